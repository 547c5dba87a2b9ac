"""Bundles in service: loading and verification, the served bundle with its store and pipeline,
activation and rollback without a restart, and the active version kept in Redis."""

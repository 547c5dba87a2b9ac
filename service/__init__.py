"""The ranking service: HTTP API, ranking pipeline, stores, metrics, settings."""

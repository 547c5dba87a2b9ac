"""Helpers the test packages share: bundles and users to serve, processes (the service, Redis,
the ``reaseq`` command), ports, dataset files, and readers of ``/metrics``.

Test modules and conftest files import helpers from here; conftest files only define fixtures.
"""

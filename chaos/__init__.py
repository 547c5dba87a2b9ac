"""The chaos run: the service on Redis under steady load while Redis, a worker and bundles fail.

``python -m chaos`` (``make chaos``) writes docs/RELIABILITY.md and docs/reliability.json.
"""

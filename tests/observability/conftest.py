"""The service fixtures (tiny bundle, demo users, an app behind an ASGI client), shared here."""

from tests.service.conftest import (  # noqa: F401
    bundle,
    bundle_root,
    make_settings,
    serving,
    users,
    users_snapshot,
)

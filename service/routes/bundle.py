"""GET /v1/bundle: the manifest of the served bundle, and the version served before it."""

from __future__ import annotations

from fastapi import APIRouter

from service.bundles.schemas import ServedBundleManifest
from service.routes.deps import RuntimeDep

router = APIRouter(prefix="/v1", tags=["bundle"])


@router.get("/bundle", response_model=ServedBundleManifest)
async def active_bundle(runtime: RuntimeDep) -> ServedBundleManifest:
    """The served bundle's manifest (version, dimensions, evaluation metrics, checksums), when
    this worker started serving it, and the previous version (the target of a rollback)."""
    served = runtime.served
    return ServedBundleManifest(
        **served.bundle.manifest.model_dump(),
        activated_at=served.activated_at,
        previous_version=runtime.lifecycle.previous_version,
    )

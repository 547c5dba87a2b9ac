"""GET /v1/bundle: the manifest of the served bundle."""

from __future__ import annotations

from fastapi import APIRouter

from service.contracts.manifest import BundleManifest
from service.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["bundle"])


@router.get("/bundle", response_model=BundleManifest)
async def active_bundle(runtime: RuntimeDep) -> BundleManifest:
    """The active bundle's manifest: version, dimensions, evaluation metrics, checksums."""
    return runtime.bundle.manifest

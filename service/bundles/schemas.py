"""HTTP bodies of the bundle endpoints: the served manifest, activation and rollback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.bundles.lifecycle import VERSION_PATTERN
from service.contracts.manifest import BundleManifest

BundleVersion = Annotated[str, StringConstraints(pattern=VERSION_PATTERN.pattern)]


class ServedBundleManifest(BundleManifest):
    """The served bundle's manifest, with when this worker started serving it and the version
    it served before (the target of a rollback)."""

    activated_at: datetime = Field(description="When this worker started serving the bundle.")
    previous_version: str | None = Field(
        description="The version served before the last activation; null when none."
    )


class ActivateBundleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: BundleVersion = Field(
        description="A folder under the bundle root (REASEQ_BUNDLE_ROOT/<version>/)."
    )


class BundleActivationResponse(BaseModel):
    version: str = Field(description="The version served now.")
    previous_version: str | None = Field(description="The version served before.")
    changed: bool = Field(description="False when the version was already served.")
    seconds: float = Field(description="Time to load, verify, warm up, probe and swap.")

"""HTTP bodies of the experiment endpoints: the running experiment with its arms' bundles."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.experiments.config import ExperimentConfig
from service.experiments.experiment import ExperimentBundle, RunningExperiment


class BundleMemoryOut(BaseModel):
    resident_bytes: int | None = Field(
        description="How much the worker's resident set grew while the bundle was loaded, "
        "warmed up and probed: an estimate (what the worker did meanwhile counts too); null "
        "where the process's memory cannot be read (no /proc)."
    )
    disk_bytes: int = Field(description="The size of the bundle's files.")


class ArmStatus(BaseModel):
    name: str
    bundle_version: str
    share: float = Field(description="Its share of the assignment units.")
    loaded_at: datetime = Field(description="When this worker loaded the arm's bundle.")
    memory: BundleMemoryOut = Field(
        description="The arm's bundle in this worker; arms and shadows of one version share "
        "one loaded copy, and each shows it."
    )


class ShadowStatus(BaseModel):
    name: str
    bundle_version: str
    loaded_at: datetime
    memory: BundleMemoryOut


class ExperimentStatus(BaseModel):
    config: ExperimentConfig = Field(description="The running configuration, salt filled in.")
    source: Literal["admin", "file"] = Field(
        description="Where it came from: PUT /v1/admin/experiment on this worker, or "
        "REASEQ_EXPERIMENT_FILE."
    )
    started_at: datetime = Field(description="When this worker started it.")
    arms: list[ArmStatus]
    shadows: list[ShadowStatus]


class ExperimentResponse(BaseModel):
    experiment: ExperimentStatus | None = Field(
        description="The experiment this worker runs; null when none runs (the served "
        "bundle answers every request)."
    )


class ExperimentStopped(BaseModel):
    stopped: ExperimentConfig | None = Field(
        description="The configuration that was running; null when none ran."
    )


def experiment_response(running: RunningExperiment | None) -> ExperimentResponse:
    if running is None:
        return ExperimentResponse(experiment=None)
    bundles = running.bundles
    return ExperimentResponse(
        experiment=ExperimentStatus(
            config=running.config,
            source=running.source.value,
            started_at=running.started_at,
            arms=[
                ArmStatus(
                    name=arm.name,
                    bundle_version=arm.bundle,
                    share=arm.share,
                    loaded_at=bundles[arm.bundle].served.activated_at,
                    memory=_memory(bundles[arm.bundle]),
                )
                for arm in running.config.arms
            ],
            shadows=[
                ShadowStatus(
                    name=shadow.name,
                    bundle_version=shadow.bundle,
                    loaded_at=bundles[shadow.bundle].served.activated_at,
                    memory=_memory(bundles[shadow.bundle]),
                )
                for shadow in running.config.shadows
            ],
        )
    )


def _memory(bundle: ExperimentBundle) -> BundleMemoryOut:
    return BundleMemoryOut(
        resident_bytes=bundle.memory.resident_bytes, disk_bytes=bundle.memory.disk_bytes
    )

"""An experiment's configuration: its arms (bundles with a share of the traffic), how requests
are assigned to them, and the shadow arms that score every request off the critical path.

The same document comes from ``PUT /v1/admin/experiment`` and from the file named by
``REASEQ_EXPERIMENT_FILE``; :data:`EXPERIMENT_ADAPTER` reads it from JSON text.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.bundles.schemas import BundleVersion
from service.http.schemas import ContextKey

#: Shares must add up to one within this.
SHARE_TOLERANCE = 1e-6
USER_ID_UNIT = "user_id"
CONTEXT_UNIT_PREFIX = "context:"
#: Experiment and arm names label metrics and prediction records: short, no spaces.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

ExperimentName = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN)]
ArmName = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN)]
AssignmentUnit = Annotated[
    str,
    StringConstraints(
        strict=True,
        max_length=len(CONTEXT_UNIT_PREFIX) + 64,
        pattern=rf"^({USER_ID_UNIT}|{CONTEXT_UNIT_PREFIX}[^\x00-\x1f\x7f]+)$",
    ),
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmConfig(_Config):
    """One arm: a bundle that answers its share of the requests."""

    name: ArmName = Field(description="The arm's name: letters, digits, '.', '_', '-'; at most 64.")
    bundle: BundleVersion = Field(
        description="The bundle version it serves: a folder under REASEQ_BUNDLE_ROOT."
    )
    share: float = Field(
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Its share of the assignment units; the arms' shares add up to 1.",
    )


class ShadowConfig(_Config):
    """A shadow arm: its bundle ranks every request too, off the critical path; its rankings go
    to the prediction log only, never to the caller."""

    name: ArmName = Field(description="The shadow arm's name, unique among arms and shadows.")
    bundle: BundleVersion = Field(description="The bundle version it scores with.")


def _salt_may_be_left_out(schema: dict[str, Any]) -> None:
    schema["required"] = [name for name in schema.get("required", []) if name != "salt"]


class ExperimentConfig(_Config):
    """Several bundles served side by side; each request is answered by one arm."""

    model_config = ConfigDict(json_schema_extra=_salt_may_be_left_out)

    name: ExperimentName = Field(
        description="The experiment's name: letters, digits, '.', '_', '-'; at most 64."
    )
    version: int = Field(
        strict=True,
        ge=1,
        description="A configuration replaces the running one only with a higher version "
        "(else 409 stale_experiment_version): raise it at every change (a ramp, a rollback).",
    )
    salt: str = Field(
        min_length=1,
        max_length=256,
        description="Mixed into the assignment hash; default: the name. A new salt reshuffles "
        "every unit across the arms, independently of the previous assignment.",
    )
    unit: AssignmentUnit = Field(
        default=USER_ID_UNIT,
        description='What is assigned: "user_id", or "context:<key>" for the value of a '
        "request's context key (a session ID); a request without that key is assigned by its "
        "user_id.",
    )
    override_context_key: ContextKey | None = Field(
        default=None,
        description="When a request's context has this key and its value names an arm, that "
        "arm answers it (QA, demos); other values are assigned as usual.",
    )
    arms: list[ArmConfig] = Field(
        min_length=1,
        max_length=16,
        description="The arms in order: each takes a contiguous range of the hash buckets by "
        "its share, so moving share between neighbouring arms moves units only into the arm "
        "that grows.",
    )
    shadows: list[ShadowConfig] = Field(
        default_factory=list,
        max_length=8,
        description="Shadow arms: they rank every answered request after the answer, on a "
        "bounded queue (REASEQ_SHADOW_QUEUE_SIZE); their rankings are logged, never returned.",
    )

    @model_validator(mode="before")
    @classmethod
    def _salt_defaults_to_the_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("salt") is None and "name" in data:
            return {**data, "salt": data["name"]}
        return data

    @field_validator("arms")
    @classmethod
    def _shares_add_up_and_names_differ(cls, arms: list[ArmConfig]) -> list[ArmConfig]:
        total = math.fsum(arm.share for arm in arms)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            shares = ", ".join(f"{arm.name}={arm.share}" for arm in arms)
            raise ValueError(f"the arms' shares must add up to 1, not {total:.6g} ({shares})")
        _unique([arm.name for arm in arms], "arm")
        return arms

    @field_validator("shadows")
    @classmethod
    def _shadow_names_differ(
        cls, shadows: list[ShadowConfig], info: ValidationInfo
    ) -> list[ShadowConfig]:
        arms = [arm.name for arm in info.data.get("arms", [])]
        _unique(arms + [shadow.name for shadow in shadows], "arm or shadow")
        return shadows

    @property
    def context_unit(self) -> str | None:
        """The context key assignment is keyed by; None when it is the user_id."""
        if self.unit.startswith(CONTEXT_UNIT_PREFIX):
            return self.unit.removeprefix(CONTEXT_UNIT_PREFIX)
        return None

    def bundle_versions(self) -> list[str]:
        """Every bundle version the arms and shadows need, each once, in config order."""
        versions = [arm.bundle for arm in self.arms] + [shadow.bundle for shadow in self.shadows]
        return list(dict.fromkeys(versions))


def _unique(names: list[str], what: str) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"each {what} name must be unique: {', '.join(repeated)} repeated")


EXPERIMENT_ADAPTER: TypeAdapter[ExperimentConfig] = TypeAdapter(ExperimentConfig)

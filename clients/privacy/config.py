"""[privacy]: what DP-SGD protects (unit), how much noise (sigma or a target epsilon), which accountant."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TORCHCSPRNG_MESSAGE = (
    "privacy.secure_mode = true needs torchcsprng (a cryptographically secure noise generator), which has no "
    "build for the installed torch 2.13; secure_mode cannot be offered. Set privacy.secure_mode = false: noise "
    "then comes from torch's seeded Mersenne Twister, which is reproducible but not cryptographically secure"
)


class PrivacyConfig(BaseModel):
    """[privacy]: DP-SGD in every NSO."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    unit: Literal["record", "person"] = Field("record", description="what one guarantee protects")
    noise_multiplier: float | None = Field(None, gt=0, le=1000, description="sigma; or give target_epsilon")
    target_epsilon: float | None = Field(None, gt=0, le=1000, description="calibrate sigma to reach this")
    max_grad_norm: float = Field(1.0, gt=0, le=1e6, description="clipping norm C per unit")
    delta: float | None = Field(None, gt=0, lt=1, description="default 0.1 / (largest NSO's number of units)")
    accountant: Literal["rdp", "prv"] = "rdp"
    epsilon_budget: float | None = Field(None, gt=0, le=1000,
                                         description="hard cap per NSO; defaults to target_epsilon")
    person_batch_size: int = Field(16, ge=1, le=100_000,
                                   description="expected persons per step (unit = person)")
    secure_mode: bool = False

    @model_validator(mode="after")
    def _choice(self) -> "PrivacyConfig":
        if self.secure_mode:
            raise ValueError(TORCHCSPRNG_MESSAGE)
        if self.enabled and (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise ValueError("give exactly one of privacy.noise_multiplier and privacy.target_epsilon "
                             f"(got noise_multiplier={self.noise_multiplier}, target_epsilon={self.target_epsilon})")
        return self

    @property
    def budget(self) -> float | None:
        return self.epsilon_budget if self.epsilon_budget is not None else self.target_epsilon

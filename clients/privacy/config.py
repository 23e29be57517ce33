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
    scope: Literal["nso", "federation"] = Field(
        "nso", description="nso: DP-SGD in each NSO; federation: DP-FedAvg over all NSOs' persons with "
                           "distributed noise under SecAgg+ (unit = person only)")
    noise_multiplier: float | None = Field(None, gt=0, le=1000, description="sigma; or give target_epsilon")
    target_epsilon: float | None = Field(None, gt=0, le=1000, description="calibrate sigma to reach this")
    max_grad_norm: float = Field(1.0, gt=0, le=1e6, description="clipping norm C per unit")
    delta: float | None = Field(None, gt=0, lt=1, description="default 0.1 / (largest NSO's number of units)")
    accountant: Literal["rdp", "prv"] = "rdp"
    epsilon_budget: float | None = Field(None, gt=0, le=1000,
                                         description="hard cap per NSO; defaults to target_epsilon")
    person_batch_size: int = Field(16, ge=1, le=100_000,
                                   description="expected persons per step (nso scope, unit = person)")
    person_sample_rate: float | None = Field(
        None, gt=0, le=1, description="Poisson rate of persons: per step in the nso scope (instead of "
                                      "person_batch_size), per round in the federation scope (default 0.5)")
    steps_per_round: int | None = Field(
        None, ge=1, le=1_000_000, description="nso scope: noisy steps per round (default: local_epochs / rate)")
    local_steps: int = Field(5, ge=1, le=1000, description="federation scope: gradient steps on each sampled "
                                                          "person's own windows")
    local_lr: float = Field(0.5, gt=0, le=100, description="federation scope: step size of those steps")
    local_batch: int | None = Field(
        None, ge=1, le=1_000_000, description="federation scope: windows per local step, drawn afresh without "
                                              "replacement from the person's windows (default: all of them)")
    server_optimizer: Literal["sgd", "adam", "fedadam"] = Field(
        "sgd", description="federation scope: server step, SGD with momentum; Adam with its second moment "
                           "corrected for the known DP noise variance (DP-AdamBC); or FedAdam (Reddi et al. 2021: "
                           "beta2 0.99, no bias correction, adaptivity server_tau)")
    server_lr: float = Field(1.0, gt=0, le=100, description="federation scope: server step size")
    server_momentum: float = Field(0.9, ge=0, lt=1, description="federation scope: server SGD momentum / Adam beta1")
    server_tau: float = Field(1e-3, gt=0, le=10, description="federation scope, fedadam: Reddi et al.'s tau, "
                                                             "added to the root of the second moment")
    clip_quantile: float | None = Field(
        None, gt=0, lt=1, description="federation scope: adaptive clipping (Andrew et al. 2021), the quantile of "
                                      "the persons' update norms the clip tracks; default: a fixed clip")
    clip_lr: float = Field(0.2, gt=0, le=10, description="adaptive clipping: geometric step of the clip per round")
    clip_count_noise: float = Field(
        0.05, gt=0, le=10, description="adaptive clipping: noise SD of the count of unclipped persons, as a fraction "
                                       "of the expected sampled persons (Andrew et al.: 1/20)")
    min_nsos: int | None = Field(
        None, ge=2, le=10_000, description="federation scope: k_min, the NSOs whose noise the aggregate always "
                                           "holds; default: the SecAgg+ reconstruction threshold")
    secure_mode: bool = False

    @model_validator(mode="after")
    def _choice(self) -> "PrivacyConfig":
        if self.secure_mode:
            raise ValueError(TORCHCSPRNG_MESSAGE)
        if self.scope == "federation" and self.unit != "person":
            raise ValueError("privacy.scope = 'federation' protects persons: set privacy.unit = 'person' "
                             "(record-level DP uses the nso scope)")
        if self.enabled and self.scope == "nso" and self.clip_quantile is not None:
            raise ValueError("privacy.clip_quantile (adaptive clipping) is built for privacy.scope = 'federation' "
                             "only; with the nso scope remove it and set privacy.max_grad_norm")
        if self.enabled and (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise ValueError("give exactly one of privacy.noise_multiplier and privacy.target_epsilon "
                             f"(got noise_multiplier={self.noise_multiplier}, target_epsilon={self.target_epsilon})")
        return self

    @property
    def federation(self) -> bool:
        return self.enabled and self.scope == "federation"

    @property
    def budget(self) -> float | None:
        return self.epsilon_budget if self.epsilon_budget is not None else self.target_epsilon


FEDERATION_NEEDS_SECAGG = (
    "privacy.scope = 'federation' needs secure_aggregation.enabled = true: each NSO adds only a 1/sqrt(k_min) "
    "share of the noise, and only secure aggregation keeps the server from seeing one NSO's sum with its share "
    "alone. Enable SecAgg+, or use privacy.scope = 'nso' (each NSO adds the full noise itself)")


def check_federation_scope(privacy: PrivacyConfig, secure_aggregation_enabled: bool, strategy: str,
                           fraction_fit: float) -> None:
    """What the federation scope needs from the other sections; ValueError naming the key if not."""
    if not privacy.federation:
        return
    if not secure_aggregation_enabled:
        raise ValueError(FEDERATION_NEEDS_SECAGG)
    if strategy != "fedavg":
        raise ValueError(f"federation.strategy = {strategy!r} with privacy.scope = 'federation': the server step is "
                         "DP-FedAvg's (privacy.server_lr, privacy.server_momentum); set federation.strategy = 'fedavg'")
    if fraction_fit != 1.0:
        raise ValueError(f"federation.fraction_fit = {fraction_fit} with privacy.scope = 'federation': every NSO must "
                         "sample its persons every round (the accountant's Poisson rate); set it to 1.0")

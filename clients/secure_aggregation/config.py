"""[secure_aggregation]: the method (Flower SecAgg+, or CKKS aggregation) and its settings. Owned by the client side (the NSOs' mod reads it
for simulated dropouts); the server imports it from here, never the reverse."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Dropout(BaseModel):
    """An NSO that stops answering at a protocol stage of a round (a simulated dropout)."""

    model_config = ConfigDict(extra="forbid")

    nso: str
    stage: Literal["setup", "share_keys", "collect_masked_vectors", "unmask", "keys", "install", "fit", "decrypt"]
    round: int = Field(1, ge=1)


STAGES = {"secaggplus": ("setup", "share_keys", "collect_masked_vectors", "unmask"),
          "ckks": ("keys", "install", "fit", "decrypt")}


class SecureAggregationConfig(BaseModel):
    """[secure_aggregation]: secure aggregation in every round, by `method` (docs/secure_aggregation.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    method: Literal["secaggplus", "ckks"] = Field(
        "secaggplus", description="secaggplus: Flower's SecAgg+ masks; ckks: the same quantized sums under CKKS "
                                  "encryption (TenSEAL), one key shared by the NSOs")
    ckks_scale_bits: int = Field(40, ge=30, le=50, description="CKKS scale 2^bits (ring degree 8192)")
    num_shares: int | float = Field(1.0, description="shares per key: an integer > 2, or a share of the NSOs (0, 1]")
    reconstruction_threshold: int | float = Field(
        0.6, description="shares needed to reconstruct: an integer >= 2, or a share of num_shares (0, 1]")
    timeout_s: float | None = Field(120.0, gt=0, le=86_400, description="wait per key stage (setup, share_keys, unmask); "
                                                                      "training waits federation.reply_timeout_s when set")
    clipping_range: float | Literal["auto"] = Field(
        "auto", description="each weighted delta value is clipped to +-this before quantization")
    quantization_range: int = Field(2**22, ge=2**8, le=2**26)
    max_weight: float | Literal["auto"] = Field("auto", description="largest num_examples of an NSO")
    dropouts: list[Dropout] = Field(default_factory=list)

    @field_validator("dropouts", mode="before")
    @classmethod
    def _from_run_config(cls, v):
        """Flower run configs carry the list as JSON text (clients/run_config.py)."""
        if v is None:
            return []
        return json.loads(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _shares(self) -> "SecureAggregationConfig":
        s, t = self.num_shares, self.reconstruction_threshold
        if isinstance(s, int) and not isinstance(s, bool) and s <= 2:
            raise ValueError(f"secure_aggregation.num_shares = {s}: an integer must be greater than 2 "
                             "(or give a share of the NSOs as a float in (0, 1])")
        if isinstance(s, float) and not 0 < s <= 1:
            raise ValueError(f"secure_aggregation.num_shares = {s}: a float must be in (0, 1]")
        if isinstance(t, int) and t < 2:
            raise ValueError(f"secure_aggregation.reconstruction_threshold = {t}: an integer must be at least 2")
        if isinstance(t, float) and not 0 < t <= 1:
            raise ValueError(f"secure_aggregation.reconstruction_threshold = {t}: a float must be in (0, 1]")
        if isinstance(s, int) and isinstance(t, int) and t >= s:
            raise ValueError(f"secure_aggregation.reconstruction_threshold = {t} must be below num_shares = {s}")
        wrong = [d.stage for d in self.dropouts if d.stage not in STAGES[self.method]]
        if wrong:
            raise ValueError(f"secure_aggregation.dropouts: stage(s) {sorted(set(wrong))} are not stages of method "
                             f"'{self.method}'; allowed: {', '.join(STAGES[self.method])}")
        if isinstance(self.clipping_range, float) and self.clipping_range <= 0:
            raise ValueError("secure_aggregation.clipping_range must be > 0 or 'auto'")
        if isinstance(self.max_weight, float) and self.max_weight <= 0:
            raise ValueError("secure_aggregation.max_weight must be > 0 or 'auto'")
        return self

"""[audit]: an empirical privacy check of a run (docs/privacy.md, "Audit")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    canaries: int = Field(1000, ge=10, le=100_000, description="m: canaries, each included with probability 1/2")
    unit: Literal["auto", "person", "record"] = Field("auto", description="what one canary is: the run's privacy "
                                                      "unit (person for non-private runs), a person, or one window")
    canary_days: int = Field(1, ge=1, le=14, description="days of windows of a canary person")
    guess_fraction: float = Field(0.2, gt=0, le=1, description="share of canaries guessed (half in, half out); "
                                  "the rest abstain")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="canaries and their inclusion, apart from the run seed")
    membership: bool = Field(True, description="also attack the real persons (loss threshold)")
    server_view: bool = Field(True, description="federation scope: also look for update-direction canaries in "
                              "the aggregates the server sees under SecAgg+")

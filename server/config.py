"""[federation]: how the coordinator runs the rounds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FederationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["fedavg", "fedprox", "fedadam"] = "fedavg"
    rounds: int = Field(10, ge=1, le=100_000)
    evaluate_every: int = Field(1, ge=1, le=100_000, description="evaluate the model (held-out and the NSOs' test "
                                                                 "persons) every n-th round and after the last")
    fraction_fit: float = Field(1.0, gt=0, le=1, description="share of NSOs trained each round")
    proximal_mu: float = Field(0.01, ge=0, le=100, description="FedProx proximal weight")
    server_lr: float = Field(0.01, gt=0, le=10, description="FedAdam server learning rate (eta)")
    node_wait_s: float = Field(120.0, gt=0, le=86_400, description="how long to wait for every NSO node")
    reply_timeout_s: float | None = Field(
        None, gt=0, le=86_400,
        description="wait for training/evaluation replies (SecAgg+'s training stage too); default: "
                    "secure_aggregation.timeout_s under SecAgg+, "
                    "else wait indefinitely")

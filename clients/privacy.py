"""DP-SGD in each NSO: Opacus per-sample gradients, clipping, noise and accounting.

Two privacy units:
- record: one sensor window. Each step Poisson-samples windows with rate q, clips each window's
  gradient to max_grad_norm, sums, adds N(0, (sigma * max_grad_norm)^2) per coordinate and divides
  by the expected batch size q * n (Opacus DPOptimizer). Guarantee: (epsilon, delta)-DP with
  respect to adding or removing one window of the NSO's training data.
- person: all windows of one individual. Opacus has no person-level mode; it is built here: each
  step Poisson-samples *persons* with rate q, takes the gradient of each person's summed loss over
  all their windows in the batch, clips it to max_grad_norm, sums over persons, and hands the sum
  to Opacus' DPOptimizer for noise and scaling, so a person's whole contribution is clipped.
  The sensitivity of the summed update to one person is then max_grad_norm, exactly as for one
  record in record-level DP-SGD, and the same subsampled-Gaussian accounting applies with the
  person sampling rate q (the user-level DP-SGD of McMahan et al. 2018). Guarantee:
  (epsilon, delta)-DP with respect to adding or removing one person with all their windows.

Batches are sampled with Poisson sampling (each unit independently with probability q), as the
accountants assume; an empty batch still takes a noisy step. Data stay in memory tensors.
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datasets.prepared import Arrays

from .clipping import ClippedSumDPOptimizer, LinearStackClipper
from .model import ActivityNet, ModelConfig
from .training import TrainingConfig, loss_fn, make_optimizer

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


# RDP orders: Opacus' default stops at 63, where small noise multipliers find their optimum at the
# edge (a valid but loose bound); these reach 1024 like Google's dp-accounting.
RDP_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [80, 96, 128, 192, 256, 384, 512, 768, 1024]


def _eps_kwargs(accountant: str) -> dict:
    return {"alphas": RDP_ORDERS} if accountant == "rdp" else {}


def make_accountant(name: str):
    return RDPAccountant() if name == "rdp" else PRVAccountant()


def epsilon_of(history: list[tuple[float, float, int]], delta: float, accountant: str) -> float:
    """Epsilon of a history of (noise multiplier, sample rate, steps), as Opacus accounts it."""
    if not history:
        return 0.0
    acc = make_accountant(accountant)
    acc.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return float(acc.get_epsilon(delta, **_eps_kwargs(accountant)))


def rate_for(cfg: "PrivacyConfig", tcfg: TrainingConfig, n_windows: int, n_persons: int) -> float:
    """Poisson rate: training.batch_size windows (record) or person_batch_size persons per step."""
    if cfg.unit == "person":
        return min(1.0, cfg.person_batch_size / max(n_persons, 1))
    return min(1.0, tcfg.batch_size / max(n_windows, 1))


def sample_rate(cfg: "PrivacyConfig", tcfg: TrainingConfig, data: Arrays) -> float:
    return rate_for(cfg, tcfg, len(data), units(data, "person"))


def steps_per_round(q: float, local_epochs: int) -> int:
    return local_epochs * max(1, int(round(1.0 / q)))


def calibrate(target_epsilon: float, delta: float, q: float, total_steps: int, accountant: str) -> float:
    """Noise multiplier reaching target_epsilon after total_steps at rate q (never above it)."""
    return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta, sample_rate=q,
                                      steps=total_steps, accountant=accountant, epsilon_tolerance=0.005,
                                      **_eps_kwargs(accountant)))


def units(data: Arrays, unit: str) -> int:
    return int(data.person.max() + 1) if unit == "person" and len(data) else len(data)


class PrivacyLedger:
    """The accountant history of one NSO, kept in its node's Context state across rounds.

    Flower's examples/opacus build a new PrivacyEngine every round, so their epsilon covers one
    round; here the history of every round stays in the node's state and epsilon is the run's.
    """

    KEY = "dp-ledger"

    def __init__(self, state) -> None:
        from flwr.app import ConfigRecord

        self._state = state
        if self.KEY not in state.config_records:
            state.config_records[self.KEY] = ConfigRecord({"history": "[]", "noise_multiplier": -1.0})
        self._rec = state.config_records[self.KEY]

    @property
    def history(self) -> list[tuple[float, float, int]]:
        return [tuple(x) for x in json.loads(str(self._rec["history"]))]

    def add(self, sigma: float, q: float, steps: int) -> None:
        self._rec["history"] = json.dumps(self.history + [(sigma, q, steps)])

    @property
    def noise_multiplier(self) -> float | None:
        v = float(self._rec["noise_multiplier"])
        return None if v < 0 else v

    @noise_multiplier.setter
    def noise_multiplier(self, v: float) -> None:
        self._rec["noise_multiplier"] = float(v)


def poisson_batch(n_units: int, q: float, gen: torch.Generator,
                  person: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson sampling: each unit in with probability q. Returns (unit mask, window indices).

    With `person` (the person index of every window) the units are persons and a sampled person
    brings all of their windows, so a person is never split across or within batches.
    """
    chosen = torch.rand(n_units, generator=gen) < q
    windows = chosen if person is None else chosen[person]
    return chosen, windows.nonzero().squeeze(1)


def dp_train(model: ActivityNet, data: Arrays, tcfg: TrainingConfig, mcfg: ModelConfig, unit: str, sigma: float,
             max_grad_norm: float, q: float, steps: int, seed: int) -> dict[str, float]:
    """`steps` DP-SGD steps with Poisson sampling of `unit`s at rate q.

    Clipping per unit (clients/clipping.py), then Opacus' DPOptimizer: Gaussian noise with standard
    deviation sigma * max_grad_norm, division by the expected batch size q * n_units, optimizer step.
    """
    gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed ^ 0x5EED)
    n_units = units(data, unit)
    clipper = LinearStackClipper(model)
    opt = ClippedSumDPOptimizer(make_optimizer(model, tcfg), noise_multiplier=sigma, max_grad_norm=max_grad_norm,
                                expected_batch_size=q * n_units, loss_reduction="mean", generator=noise_gen)
    x, y, wb = torch.from_numpy(data.x), torch.from_numpy(data.y), torch.from_numpy(data.wellbeing)
    person = torch.from_numpy(data.person)
    model.train()
    total, batch_units, clipped = 0.0, 0, 0
    try:
        for _ in range(steps):
            _, idx = poisson_batch(n_units, q, gen, person if unit == "person" else None)
            opt.zero_grad(set_to_none=True)
            if len(idx) == 0:
                clipper.empty()  # an empty Poisson batch: no gradient, but noise all the same
            else:
                clipper.reset()
                per_window = loss_fn(model(x[idx]), y[idx], wb[idx], mcfg.wellbeing_weight, model.n_classes, "none")
                stats = clipper.clip_and_sum(per_window, max_grad_norm, person[idx] if unit == "person" else None)
                total += float(per_window.detach().mean())
                batch_units += stats["units"]
                clipped += stats["clipped"]
            opt.step()
    finally:
        clipper.close()
    return {"train_loss": total / max(steps, 1), "steps": steps, "mean_batch_units": batch_units / max(steps, 1),
            "clipped_share": clipped / max(batch_units, 1)}

"""Poisson sampling of privacy units, as the accountants assume, and the rates and step counts it implies."""

from __future__ import annotations

import torch

from datasets.prepared import Arrays

from ..training import TrainingConfig
from .config import PrivacyConfig


def units(data: Arrays, unit: str) -> int:
    """Number of privacy units in `data`: persons, or windows (records)."""
    return int(data.person.max() + 1) if unit == "person" and len(data) else len(data)


def rate_for(cfg: PrivacyConfig, tcfg: TrainingConfig, n_windows: int, n_persons: int) -> float:
    """Poisson rate per step: training.batch_size windows (record); person_sample_rate, or
    person_batch_size persons, per step (person)."""
    if cfg.unit == "person":
        if cfg.person_sample_rate is not None:
            return cfg.person_sample_rate
        return min(1.0, cfg.person_batch_size / max(n_persons, 1))
    return min(1.0, tcfg.batch_size / max(n_windows, 1))


def sample_rate(cfg: PrivacyConfig, tcfg: TrainingConfig, data: Arrays) -> float:
    return rate_for(cfg, tcfg, len(data), units(data, "person"))


def steps_per_round(q: float, local_epochs: int, fixed: int | None = None) -> int:
    """Noisy steps of one round: `fixed` (privacy.steps_per_round), else local_epochs passes of 1/q."""
    return fixed if fixed is not None else local_epochs * max(1, int(round(1.0 / q)))


def poisson_batch(n_units: int, q: float, gen: torch.Generator,
                  person: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson sampling: each unit in with probability q. Returns (unit mask, window indices).

    With `person` (the person index of every window) the units are persons and a sampled person
    brings all of their windows, so a person is never split across or within batches.
    """
    chosen = torch.rand(n_units, generator=gen) < q
    windows = chosen if person is None else chosen[person]
    return chosen, windows.nonzero().squeeze(1)

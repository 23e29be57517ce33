"""The person-level DP release of an NSO's time-use statistics, and its accounting.

Two groups of persons touch the released numbers, and they are disjoint: the sensor-only persons
(through the cell sums of predicted minutes, the person-day counts and the well-being sums) and the
labelled persons (through the confusion matrix). Each group's numbers form one Gaussian mechanism:
every block is divided by its L2 sensitivity and gets a share of the budget (`Mechanism`; the
well-being sums `inference.wellbeing_share`, the rest equal shares), noise of standard deviation
z x sensitivity / sqrt(share) keeps the whole vector one mechanism with noise multiplier z. The
epsilon is that of one Gaussian mechanism with noise multiplier z (no subsampling), from the tight analytic Gaussian curve (clients/privacy/analytic_gaussian.py), which dp-accounting's PLD
accountant reproduces (tests/test_time_use.py).

Sensitivities (P = breakdowns released, the overall cell counting as one; D = max_days):
- minutes sums: a person's days add at most D person-day vectors, each of L2 norm at most B (the
  day's 1,440 minutes, or under DP the `inference.day_clip` bound they are clipped to,
  cells.clip_days), to one cell of each breakdown: D x B x sqrt(P);
- person-day counts: D x sqrt(P);
- well-being sums (overall cell, per predicted label), of ratings centred on the middle of their
  scale: a person-day adds a vector of L2 norm at most windows per day x half the scale (under DP
  clipped to `inference.day_clip` of that, cells.clip_days): D x that bound;
- confusion counts (labelled persons), one matrix per cell: a window adds 1 to one entry of its
  cell's matrix in each breakdown: D x windows per day x sqrt(P).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..privacy import analytic_gaussian


@dataclass(frozen=True)
class Mechanism:
    """One Gaussian mechanism over named blocks, each with its share of the budget:
    noise_std[block] = z x sensitivity / sqrt(share). Divided by its noise, block b moves by at most
    sqrt(share_b) / z when one person changes, so the whole vector by sqrt(sum of shares) / z = 1 / z:
    one Gaussian mechanism with noise multiplier z, however the shares split it. Without shares,
    every block gets the same (noise z x sqrt(blocks) x sensitivity)."""

    z: float  # noise multiplier (0: no noise)
    sensitivity: dict[str, float]
    delta: float
    shares: dict[str, float] | None = None
    # This party's part of the noise variance: 1 when it adds all the noise; 1/h when h parties'
    # independent parts add up to it (distributed noise, pooled_release.py): the epsilon is that of
    # their sum, which holds the accounted noise only if at least h parts are in it.
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.shares is not None:
            if set(self.shares) != set(self.sensitivity):
                raise ValueError(f"budget shares {sorted(self.shares)} must name the blocks {sorted(self.sensitivity)}")
            if min(self.shares.values()) <= 0 or abs(sum(self.shares.values()) - 1.0) > 1e-9:
                raise ValueError(f"budget shares must be positive and sum to 1, got {self.shares}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"a party's part of the noise variance must lie in (0, 1], got {self.fraction}")

    @property
    def noise_std(self) -> dict[str, float]:
        shares = self.shares or {k: 1.0 / len(self.sensitivity) for k in self.sensitivity}
        return {k: self.z * s * math.sqrt(self.fraction / shares[k]) for k, s in self.sensitivity.items()}

    def epsilon(self) -> float | None:
        return analytic_gaussian.epsilon_of(self.z, self.delta) if self.z > 0 else None

    def apply(self, blocks: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The blocks with their noise (unchanged without noise); fails loudly on a block it does not
        know, so nothing leaves with less noise than accounted."""
        unknown = set(blocks) - set(self.sensitivity)
        if unknown:
            raise ValueError(f"blocks {sorted(unknown)} have no accounted sensitivity")
        if self.z == 0:
            return dict(blocks)
        std = self.noise_std
        return {k: v + rng.normal(0.0, std[k], size=np.shape(v)) for k, v in blocks.items()}


def noise_multiplier(epsilon: float | None, delta: float) -> float:
    """z of one Gaussian mechanism at (epsilon, delta), never above the target; 0 without DP."""
    return 0.0 if epsilon is None else analytic_gaussian.noise_multiplier(epsilon, delta)


def minutes_sensitivity(partitions: int, max_days: int, day_bound: float) -> float:
    """L2 sensitivity of a block of cell sums of minutes: a person's days add at most max_days
    person-day vectors of L2 norm <= day_bound (the day's minutes, or the DP clip bound,
    cells.clip_days) to one cell of each partition."""
    return max_days * day_bound * math.sqrt(partitions)


def sensor_mechanism(z: float, delta: float, partitions: int, max_days: int, day_bound: float,
                     wellbeing_day_bound: float | None, person_days: bool = True,
                     wellbeing_share: float | None = None, fraction: float = 1.0) -> Mechanism:
    """`wellbeing_day_bound`: the L2 bound of one person-day's vector of centred well-being sums
    (none: no well-being released); `person_days=False` leaves the counts out (PPI derives them from
    the minutes: one block less); `wellbeing_share` is the well-being sums' share of the mechanism's
    budget (the other blocks split the rest equally; none: every block the same)."""
    sens = {"minutes": minutes_sensitivity(partitions, max_days, day_bound)}
    if person_days:
        sens["person_days"] = max_days * math.sqrt(partitions)
    shares = None
    if wellbeing_day_bound is not None:
        sens["wellbeing"] = max_days * wellbeing_day_bound
        if wellbeing_share is not None:
            rest = (1.0 - wellbeing_share) / (len(sens) - 1)
            shares = {k: (wellbeing_share if k == "wellbeing" else rest) for k in sens}
    return Mechanism(z, sens, delta, shares, fraction)


def labelled_mechanism(z: float, delta: float, partitions: int, max_days: int, windows_per_day: int) -> Mechanism:
    """ACC/PACC's confusion counts (national publishing only)."""
    return Mechanism(z, {"confusion": max_days * windows_per_day * math.sqrt(partitions)}, delta)

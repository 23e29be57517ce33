"""The person-level DP release of an NSO's time-use statistics, and its accounting.

Two groups of persons touch the released numbers, and they are disjoint: the sensor-only persons
(through the cell sums of predicted minutes, the person-day counts and the well-being sums) and the
labelled persons (through the confusion matrix). Each group's numbers form one Gaussian mechanism:
every block is divided by its L2 sensitivity, so that the whole vector moves by at most sqrt(blocks)
when one person is added or removed, and Gaussian noise of standard deviation z x sqrt(blocks) is
added; the epsilon is that of one Gaussian mechanism with noise multiplier z (no subsampling), from
the tight analytic Gaussian curve (clients/privacy/analytic_gaussian.py), which dp-accounting's PLD
accountant reproduces (tests/test_time_use.py).

Sensitivities (P = breakdowns released, the overall cell counting as one; D = max_days):
- minutes sums: a person's days add at most D x 1,440 minutes to one cell of each breakdown:
  D x 1,440 x sqrt(P);
- person-day counts: D x sqrt(P);
- well-being sums (overall cell, per predicted label): D x windows per day x max |rating|;
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
    """One Gaussian mechanism over named blocks; noise_std[block] = z x sqrt(blocks) x sensitivity."""

    z: float  # noise multiplier (0: no noise)
    sensitivity: dict[str, float]
    delta: float

    @property
    def noise_std(self) -> dict[str, float]:
        scale = self.z * math.sqrt(len(self.sensitivity))
        return {k: scale * s for k, s in self.sensitivity.items()}

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


def minutes_sensitivity(partitions: int, max_days: int, day_minutes: float) -> float:
    """L2 sensitivity of a block of cell sums of minutes: a person's days add at most
    max_days x day_minutes to one cell of each partition."""
    return max_days * day_minutes * math.sqrt(partitions)


def sensor_mechanism(z: float, delta: float, partitions: int, max_days: int, day_minutes: float,
                     windows_per_day: int, wellbeing_bound: float | None, person_days: bool = True) -> Mechanism:
    """`person_days=False` leaves the counts out (PPI derives them from the minutes: one block less)."""
    sens = {"minutes": minutes_sensitivity(partitions, max_days, day_minutes)}
    if person_days:
        sens["person_days"] = max_days * math.sqrt(partitions)
    if wellbeing_bound is not None:
        sens["wellbeing"] = max_days * windows_per_day * wellbeing_bound
    return Mechanism(z, sens, delta)


def labelled_mechanism(z: float, delta: float, partitions: int, max_days: int, windows_per_day: int) -> Mechanism:
    return Mechanism(z, {"confusion": max_days * windows_per_day * math.sqrt(partitions)}, delta)

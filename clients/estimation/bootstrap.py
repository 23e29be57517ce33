"""Person-bootstrap intervals of the corrected estimates, release noise included (estimate_steps.py
says what they cover). Each replicate: labelled persons resampled (new confusion matrices, with a
fresh draw of their release noise), fresh release noise on the cell sums, and per cell the error of
the correction on as many of the resampled labelled persons' own diaries as the cell has
sensor-only persons, subtracted. That error is not centred: where the NSO's persons are
misclassified differently from the federation's (a pooled matrix), its mean moves the interval
towards the truth, and its spread over replicates widens it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import quantify
from .cells import Cell
from .estimate_steps import LabelledPersons, Released, corrected, residuals
from .release import Mechanism


@dataclass(frozen=True)
class Interval:
    low: np.ndarray  # [cells, K]
    high: np.ndarray
    variance: np.ndarray


def _confusion_draw(lab: LabelledPersons, idx: np.ndarray, base: np.ndarray | None, labelled: Mechanism,
                    rng: np.random.Generator) -> np.ndarray:
    """A replicate's confusion matrices [cells, K, K]: the resampled labelled persons (plus, when
    pooled, the other NSOs' part of the pooled counts, `base`), with a fresh draw of this NSO's
    release noise."""
    counts = lab.confusion[idx].sum(axis=0)
    if labelled.z > 0:
        counts = counts + rng.normal(0.0, labelled.noise_std["confusion"], counts.shape)
    return quantify.row_normalised(counts if base is None else base + counts)


def bootstrap(released: Released, lab: LabelledPersons, cells: list[Cell], persons_per_cell: np.ndarray,
              sensor: Mechanism, labelled: Mechanism, replicates: int, day_minutes: float,
              rng: np.random.Generator, pooled_base: np.ndarray | None = None) -> Interval:
    n_lab, k = len(lab.confusion), lab.confusion.shape[-1]
    std = sensor.noise_std if sensor.z > 0 else {}
    reps = np.zeros((replicates, len(cells), k))
    for b in range(replicates):
        idx = rng.integers(0, n_lab, n_lab)
        m_b = _confusion_draw(lab, idx, pooled_base, labelled, rng)
        minutes = released.minutes + (rng.normal(0.0, std["minutes"], released.minutes.shape) if std else 0)
        days = released.person_days + (rng.normal(0.0, std["person_days"], released.person_days.shape) if std else 0)
        est_b, _ = corrected(minutes, days, m_b, day_minutes)
        for c in range(len(cells)):
            who, res = residuals(lab, c, m_b[c], day_minutes)
            row = np.searchsorted(who, idx[np.isin(idx, who)])  # the resampled persons who have this cell
            if not len(row):
                continue
            draw = rng.choice(row, max(int(persons_per_cell[c]), 1))
            est_b[c] -= res[draw].mean(axis=0)
        reps[b] = np.clip(est_b, 0.0, day_minutes)  # minutes per day cannot leave [0, a day]
    low, high = np.percentile(reps, [2.5, 97.5], axis=0)
    return Interval(low, high, reps.var(axis=0, ddof=1))

"""Prediction-powered estimates of minutes per day that use both samples (issue 20).

A cell's statistic is the population's mean minutes per person-day, theta = E[y] / E[d] (y a
person's true minutes of an activity over their person-days in the cell, d their person-days: the
HETUS ratio estimator). Three independent groups of persons inform it:
- the diary persons the model was trained on: their diaries alone give the plain ratio estimate
  (model-free, so their use in training does not bias it);
- the diary persons held out from training (the labelled persons): true and predicted minutes;
- the sensor-only persons: predicted minutes only.
The held-out and sensor-only persons give the PPI++ estimate (Angelopoulos et al. 2023, power
tuned): lambda * (sum f_j / sum d_j over sensor-only) + sum (y_i - lambda f_i) / sum d_i over
labelled, with lambda per cell and activity minimising its estimated variance (lambda = 0 is the
labelled persons' diaries alone, so in large samples it is never worse than them). The two
unbiased, independent estimates are then combined by inverse estimated variance, so the result is
never worse (in large samples) than the whole diary sample alone. Variances are the linearised
ratio variances over persons (persons are the sampling units; a person's days stay together), and
the 95 % interval is normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Persons:
    """Per person of one group in one cell: person-days d [n] and minutes [n, K] (y true, f predicted)."""

    d: np.ndarray
    y: np.ndarray | None = None
    f: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.d))


@dataclass(frozen=True)
class CellEstimate:
    minutes: np.ndarray  # [K] minutes per day
    variance: np.ndarray  # [K]
    lam: np.ndarray  # [K] the power-tuning weight (nan where PPI had too few persons)
    weight_ppi: np.ndarray  # [K] share of the PPI estimate in the combination

    @property
    def low(self) -> np.ndarray:
        return self.minutes - Z95 * np.sqrt(self.variance)

    @property
    def high(self) -> np.ndarray:
        return self.minutes + Z95 * np.sqrt(self.variance)


def _ratio(v: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ratio sum v / sum d [K], linearised per-person scores [n, K] whose mean variance / n is its variance)."""
    theta = v.sum(axis=0) / d.sum()
    return theta, (v - np.outer(d, theta)) / d.mean()


def _var_of_mean(scores: np.ndarray) -> np.ndarray:
    n = len(scores)
    return scores.var(axis=0, ddof=1) / n if n > 1 else np.full(scores.shape[1], np.inf)


def ratio_estimate(p: Persons) -> tuple[np.ndarray, np.ndarray]:
    """The plain ratio estimate from true minutes, and its variance."""
    theta, s = _ratio(p.y, p.d)
    return theta, _var_of_mean(s)


def ppi_estimate(lab: Persons, unl: Persons) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(PPI++ estimate, its variance, lambda) from labelled (y and f) and unlabelled (f) persons."""
    _, a = _ratio(lab.y, lab.d)
    _, b = _ratio(lab.f, lab.d)
    _, c = _ratio(unl.f, unl.d)
    n, m = len(lab), len(unl)
    cov = ((a - a.mean(0)) * (b - b.mean(0))).sum(0) / (n - 1)
    vb, vc = b.var(0, ddof=1), c.var(0, ddof=1)
    denom = vb / n + vc / m
    lam = np.clip(np.where(denom > 0, (cov / n) / np.where(denom > 0, denom, 1), 0.0), 0.0, 1.5)
    theta = lam * unl.f.sum(0) / unl.d.sum() + (lab.y - lam * lab.f).sum(0) / lab.d.sum()
    _, r = _ratio(lab.y - lam * lab.f, lab.d)
    _, u = _ratio(lam * unl.f, unl.d)
    return theta, _var_of_mean(r) + _var_of_mean(u), lam


def combined(trained: Persons, lab: Persons, unl: Persons) -> CellEstimate:
    """The inverse-variance combination of the trained diary persons' ratio estimate and PPI++ on
    the held-out and sensor-only persons; a group with fewer than 2 persons drops out."""
    k = (lab.y if lab.y is not None else trained.y).shape[1]
    parts = []
    if len(trained) >= 2:
        parts.append(ratio_estimate(trained) + (np.full(k, np.nan), 0.0))
    if len(lab) >= 2 and len(unl) >= 2:
        theta, var, lam = ppi_estimate(lab, unl)
        parts.append((theta, var, lam, 1.0))
    if not parts:
        raise ValueError("a cell needs at least 2 diary persons to be estimated")
    precision = sum(1.0 / np.maximum(v, 1e-12) for _, v, _, _ in parts)
    theta = sum(t / np.maximum(v, 1e-12) for t, v, _, _ in parts) / precision
    w_ppi = sum(flag / np.maximum(v, 1e-12) for _, v, _, flag in parts) / precision
    lam = next((lm for _, _, lm, flag in parts if flag), np.full(k, np.nan))
    return CellEstimate(theta, 1.0 / precision, lam, w_ppi)

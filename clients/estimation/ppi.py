"""Prediction-powered estimates of minutes per day that use both samples (issue 20).

A cell's statistic is the population's mean minutes per person-day, theta = E[y] / E[d] (y a
person's true minutes of an activity over their person-days in the cell, d their person-days: the
HETUS ratio estimator). Three independent groups of persons inform it:
- the diary persons the model was trained on: their diaries give the plain ratio estimate
  (model-free, so their use in training does not bias it);
- the diary persons held out from training (the labelled persons): true and predicted minutes;
- the sensor-only persons: predicted minutes only.
The held-out and sensor-only persons give the PPI++ estimate (Angelopoulos et al. 2023):
lambda * (sum f_j / sum d_j over sensor-only) + sum (y_i - lambda f_i) / sum d_i over labelled,
unbiased for every lambda fixed in advance. lambda (per activity) is power-tuned on the trained
persons - the regression slope of their true on their predicted minutes - which keeps it
independent of the two samples it weights: tuned on the labelled persons themselves (measured on
seed 0's population), it collapsed to 0 for rare activities whose few diaries lacked them and gave
zero-width intervals. Where the trained diaries show no variation at all, lambda is 1 (plain PPI).
The ratio and PPI++ estimates are independent and unbiased; they are combined with weights from
their estimated variances. Every per-person variance in a cell borrows `smoothing` persons' worth
of the NSO's whole sample (small cells get stable weights and intervals that are not too narrow,
the survey literature's variance smoothing), and the trained persons' variance is never taken
below what the model's predictions over the sensor-only persons imply - a cell whose few diaries
happen to lack an activity does not claim certainty. Variances are linearised ratio variances
over persons (persons are the sampling units; a person's days stay together); the 95 % interval
uses Student's t with the cell's diary persons less 2 degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

Z95 = 1.959963984540054
# Prior persons a cell's per-person variances borrow from the NSO's whole sample: chosen on the
# population of seed 0's run (the benchmark reports other seeds); 0 turns smoothing off.
SMOOTHING = 5.0


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
    quantile: float  # of the 95 % interval (Student's t)
    weight_ppi: np.ndarray  # [K] share of the PPI++ estimate in the combination

    @property
    def low(self) -> np.ndarray:
        return self.minutes - self.quantile * np.sqrt(self.variance)

    @property
    def high(self) -> np.ndarray:
        return self.minutes + self.quantile * np.sqrt(self.variance)


@dataclass(frozen=True)
class Spread:
    """Per-person variances [K] of the linearised ratio scores: trained diaries (y), labelled
    residuals (y - lambda f) and sensor-only predictions (lambda f)."""

    trained: np.ndarray
    residual: np.ndarray
    predicted: np.ndarray


def _scores(v: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ratio sum v / sum d [K], linearised per-person scores [n, K] whose variance / n is its variance)."""
    theta = v.sum(axis=0) / d.sum()
    return theta, (v - np.outer(d, theta)) / d.mean()


def _spread(v: np.ndarray, d: np.ndarray) -> np.ndarray:
    return _scores(v, d)[1].var(axis=0, ddof=1) if len(d) > 1 else np.zeros(v.shape[1])


def ratio_estimate(p: Persons) -> tuple[np.ndarray, np.ndarray]:
    """The plain ratio estimate from true minutes, and its variance."""
    theta, s = _scores(p.y, p.d)
    return theta, (s.var(axis=0, ddof=1) / len(p) if len(p) > 1 else np.full(p.y.shape[1], np.inf))


def tuning(trained: Persons) -> np.ndarray:
    """lambda [K]: the slope of the trained persons' true on their predicted minutes, within [0, 1.5];
    1 where their diaries or predictions do not vary."""
    _, a = _scores(trained.y, trained.d)
    _, b = _scores(trained.f, trained.d)
    a, b = a - a.mean(0), b - b.mean(0)
    vb = (b * b).sum(0)
    informed = (vb > 0) & ((a * a).sum(0) > 0)
    return np.where(informed, np.clip((a * b).sum(0) / np.where(informed, vb, 1.0), 0.0, 1.5), 1.0)


def spread(trained: Persons, lab: Persons, unl: Persons, lam: np.ndarray) -> Spread:
    return Spread(_spread(trained.y, trained.d), _spread(lab.y - lam * lab.f, lab.d), _spread(lam * unl.f, unl.d))


def _smoothed(v: np.ndarray, n: int, ref: np.ndarray | None, smoothing: float) -> np.ndarray:
    if ref is None or smoothing <= 0:
        return v
    return ((n - 1) * v + smoothing * ref) / (n - 1 + smoothing)


@dataclass(frozen=True)
class Parts:
    """The two independent estimates of a cell [K] and their variances (nan/inf where a group has
    fewer than 2 persons), and the cell's diary persons (for the interval's degrees of freedom)."""

    theta_t: np.ndarray
    var_t: np.ndarray
    theta_p: np.ndarray
    var_p: np.ndarray
    diary_persons: int

    @property
    def quantile(self) -> float:
        return float(student_t.ppf(0.975, max(self.diary_persons - 2, 1)))


def parts(trained: Persons, lab: Persons, unl: Persons, lam: np.ndarray, reference: Spread | None = None,
          smoothing: float = SMOOTHING) -> Parts:
    """The trained persons' ratio estimate and PPI++ on the held-out and sensor-only persons, with
    smoothed variances (see the module docstring)."""
    nt, nl, m = len(trained), len(lab), len(unl)
    has_t, has_p = nt >= 2, nl >= 2 and m >= 2
    if not (has_t or has_p):
        raise ValueError("a cell needs at least 2 diary persons to be estimated")
    k, ref = len(lam), reference or Spread(None, None, None)
    theta_t, var_t = np.full(k, np.nan), np.full(k, np.inf)
    theta_p, var_p = np.full(k, np.nan), np.full(k, np.inf)
    if has_p:
        v_res = _smoothed(_spread(lab.y - lam * lab.f, lab.d), nl, ref.residual, smoothing)
        v_pred = _smoothed(_spread(lam * unl.f, unl.d), m, ref.predicted, smoothing)
        var_p = v_res / nl + v_pred / m
        theta_p = lam * unl.f.sum(0) / unl.d.sum() + (lab.y - lam * lab.f).sum(0) / lab.d.sum()
    if has_t:
        theta_t, _ = _scores(trained.y, trained.d)
        v_t = _smoothed(_spread(trained.y, trained.d), nt, ref.trained, smoothing)
        var_t = (np.maximum(v_t, v_res + v_pred) if has_p else v_t) / nt
    return Parts(theta_t, var_t, theta_p, var_p, nt + nl)


def share_of_ppi(var_t: np.ndarray, var_p: np.ndarray) -> np.ndarray:
    """The inverse-variance weight of PPI++ (1 without a trained estimate, 0 without PPI++)."""
    with np.errstate(invalid="ignore"):  # both infinite: a cell not estimated (its estimate is nan)
        return np.where(np.isinf(var_t), 1.0, np.where(np.isinf(var_p), 0.0, var_t / np.maximum(var_t + var_p, 1e-300)))


def mix(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(1 - w) a + w b, where a weight of exactly 0 or 1 ignores the other (possibly undefined) part."""
    with np.errstate(invalid="ignore"):
        return np.where(w == 0, a, np.where(w == 1, b, (1 - w) * a + w * b))


def mix_variance(var_a: np.ndarray, var_b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The variance of `mix` of two independent estimates."""
    with np.errstate(invalid="ignore"):
        return np.where(w == 0, var_a, np.where(w == 1, var_b, (1 - w) ** 2 * var_a + w ** 2 * var_b))


def combined(trained: Persons, lab: Persons, unl: Persons, lam: np.ndarray, reference: Spread | None = None,
             smoothing: float = SMOOTHING) -> CellEstimate:
    """`parts` combined with weights from their variances; a group with fewer than 2 persons drops out."""
    p = parts(trained, lab, unl, lam, reference, smoothing)
    w = share_of_ppi(p.var_t, p.var_p)
    return CellEstimate(mix(p.theta_t, p.theta_p, w), mix_variance(p.var_t, p.var_p, w), p.quantile, w)


@dataclass(frozen=True)
class Group:
    """One group of persons over all cells: person-days d [n, cells], minutes [n, cells, K]."""

    d: np.ndarray
    y: np.ndarray | None = None
    f: np.ndarray | None = None

    def in_cell(self, c: int) -> Persons:
        who = self.d[:, c] > 0
        pick = lambda a: None if a is None else a[who, c]  # noqa: E731
        return Persons(self.d[who, c], pick(self.y), pick(self.f))


@dataclass(frozen=True)
class Table:
    """Estimates per cell and activity [cells, K]; nan where a cell cannot be estimated."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    variance: np.ndarray


@dataclass(frozen=True)
class CellParts:
    """`Parts` of every cell: [cells, K] arrays, quantile [cells]; a cell that cannot be estimated
    has nan estimates."""

    theta_t: np.ndarray
    var_t: np.ndarray
    theta_p: np.ndarray
    var_p: np.ndarray
    quantile: np.ndarray


def parts_by_cell(trained: Group, labelled: Group, sensor: Group, lam: np.ndarray | None = None,
                  smoothing: float = SMOOTHING) -> CellParts:
    """`parts` in every cell; lambda (unless given) tuned and variances smoothed on cell 0 (the whole
    sample, the 'all' row)."""
    cells, k = trained.d.shape[1], trained.y.shape[2]
    whole = (trained.in_cell(0), labelled.in_cell(0), sensor.in_cell(0))
    if lam is None:
        lam = tuning(whole[0]) if len(whole[0]) >= 2 else np.ones(k)
    reference = spread(*whole, lam) if min(len(g) for g in whole) >= 2 else None
    out = [np.full((cells, k), v) for v in (np.nan, np.inf, np.nan, np.inf)] + [np.full(cells, np.nan)]
    for c in range(cells):
        try:
            p = parts(trained.in_cell(c), labelled.in_cell(c), sensor.in_cell(c), lam, reference, smoothing)
        except ValueError:
            continue
        for a, v in zip(out, (p.theta_t, p.var_t, p.theta_p, p.var_p, p.quantile)):
            a[c] = v
    return CellParts(*out)


def table(estimate: np.ndarray, variance: np.ndarray, quantile: np.ndarray, day_minutes: float) -> Table:
    """Estimates and intervals kept within [0, day_minutes]; nan stays nan (a cell not estimated).
    `quantile` per cell [cells] or per cell and activity [cells, K]."""
    half = (quantile if quantile.ndim == 2 else quantile[:, None]) * np.sqrt(variance)
    clip = lambda a: np.clip(a, 0.0, day_minutes)  # noqa: E731
    return Table(clip(estimate), clip(estimate - half), clip(estimate + half), variance)


def by_cell(trained: Group, labelled: Group, sensor: Group, day_minutes: float,
            smoothing: float = SMOOTHING) -> Table:
    """The non-private estimate: `combined` in every cell (via `parts_by_cell`); a cell with fewer
    than 2 diary persons is left empty (nan), not guessed."""
    p = parts_by_cell(trained, labelled, sensor, smoothing=smoothing)
    w = share_of_ppi(p.var_t, p.var_p)
    est = mix(p.theta_t, p.theta_p, w)
    var = np.where(np.isfinite(est), mix_variance(p.var_t, p.var_p, w), np.nan)
    return table(est, var, p.quantile, day_minutes)

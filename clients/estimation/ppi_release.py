"""The person-level DP release of the prediction-powered estimate (issue 20, item 4).

Under DP an NSO publishes, per cell, sums of minutes with Gaussian noise - three disjoint groups of
persons, each one Gaussian mechanism at the release's noise multiplier (so by parallel composition
the release's epsilon is that of one mechanism):
- sensor-only persons: their predicted minutes (the probabilities; release.sensor_mechanism, with
  the well-being sums when the data rate well-being);
- held-out labelled persons: their diary minutes and their predicted minutes;
- trained persons: their diary minutes.
Person-day counts are not released: every person-day's minutes (diary or predicted) sum to the
day, so the count of a group is its minutes summed over activities / day_minutes - a block of
noise saved (the estimates are minutes per recorded day, the HETUS convention, identical when days
are complete; a day clipped to the L2 bound counts as a little less than one). Sensitivity of every
block: a person's first max_days days add at most max_days person-day vectors, each clipped to L2
norm `day_bound` (cells.clip_days; `inference.day_clip` x the day), to one cell of each breakdown.

Every block of noisy sums is then made consistent (`consistency`): each breakdown's categories must
add up to the overall cell, as the exact sums do, and the least-squares projection onto that removes
noise for free (the overall cell's noise variance falls to about 1 / (1 + sum over breakdowns of
1 / categories) of its own).

The estimate combines the trained persons' diary ratio with PPI++ at lambda = 1 (tuning lambda on
the trained persons would spend their budget once more). Its interval - and the weights of the
combination - come from the released sums alone (`sampling_from_release`), so they are
post-processing of the release, covered by its epsilon and published with it: the noise variances
are public (noise scales, released sums), and the sampling variances are estimated from how far
the three independent groups' released estimates disagree beyond their known noise. No microdata
figure enters what is published. Where the noise dominates (epsilon 1 at these sample sizes) the
estimate is essentially the trained persons' noisy diaries; with larger samples the sampling
variances the release reveals let PPI++ take the weight its precision earns (docs/time_use.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from . import ppi
from .release import Mechanism, minutes_sensitivity

DP_LAMBDA = 1.0  # lambda of the DP release (public, fixed before the data are seen)


def labelled_mechanism(z: float, delta: float, partitions: int, max_days: int, day_bound: float,
                       fraction: float = 1.0) -> Mechanism:
    s = minutes_sensitivity(partitions, max_days, day_bound)
    return Mechanism(z, {"diary": s, "predicted": s}, delta, fraction=fraction)


def trained_mechanism(z: float, delta: float, partitions: int, max_days: int, day_bound: float,
                      fraction: float = 1.0) -> Mechanism:
    return Mechanism(z, {"diary": minutes_sensitivity(partitions, max_days, day_bound)}, delta, fraction=fraction)



@dataclass(frozen=True)
class Sums:
    """The released (noisy) cell sums [cells, K] and the standard deviation of each one's noise (one
    number, or one per cell [cells, 1] after the consistency step); `kinds` [cells] says the kind of
    each cell (`cell_kinds`)."""

    sensor_predicted: np.ndarray
    labelled_diary: np.ndarray
    labelled_predicted: np.ndarray
    trained_diary: np.ndarray
    std: dict[str, float | np.ndarray]
    kinds: np.ndarray | None = None


def cell_kinds(cells: list[tuple[str, str]] | None) -> np.ndarray | None:
    """[cells] 0 for the overall cell, 1 for a breakdown's: each kind has its own dispersion of the
    sampling variance (`_dispersion_by_kind`). The overall cell mixes every group, so its persons
    differ more around its mean than a breakdown category's persons do around theirs."""
    return None if cells is None else np.array([0 if g == "all" else 1 for g, _ in cells])


def consistency(cells: list[tuple[str, str]]) -> np.ndarray:
    """M [cells, cells]: the orthogonal projection onto cell sums in which every breakdown's
    categories add up to the overall cell (cell 0). Exact sums satisfy it - a released breakdown is
    known for every person and day (inference_data._available), and each person-day falls in one
    category - so M leaves them unchanged and only removes noise: with the same noise on every
    cell, M x is the least-squares (best linear unbiased) consistent estimate, and its noise
    variance is sigma^2 x M's diagonal. Post-processing: no privacy cost."""
    groups = list(dict.fromkeys(g for g, _ in cells[1:]))
    a = np.zeros((len(groups), len(cells)))
    for i, g in enumerate(groups):
        a[i, 0] = -1.0
        a[i, [j for j, (h, _) in enumerate(cells) if h == g]] = 1.0
    return np.eye(len(cells)) - (a.T @ np.linalg.solve(a @ a.T, a) if groups else 0.0)


def release(trained: ppi.Group, labelled: ppi.Group, sensor_predicted: np.ndarray, sensor_std: float,
            labelled_mech: Mechanism, trained_mech: Mechanism, rng_labelled: np.random.Generator,
            rng_trained: np.random.Generator, cells: list[tuple[str, str]] | None = None) -> Sums:
    """The diary groups' noisy sums beside the sensor-only sums already released (with `sensor_std`);
    with the `cells`, every block made consistent (`consistency`), its noise standard deviation per
    cell [cells, 1] then."""
    lab = labelled_mech.apply({"diary": labelled.y.sum(0), "predicted": labelled.f.sum(0)}, rng_labelled)
    tr = trained_mech.apply({"diary": trained.y.sum(0)}, rng_trained)
    std_l, std_t = labelled_mech.noise_std, trained_mech.noise_std
    blocks = {"sensor_predicted": sensor_predicted, "labelled_diary": lab["diary"],
              "labelled_predicted": lab["predicted"], "trained_diary": tr["diary"]}
    std = {"sensor_predicted": sensor_std, "labelled_diary": std_l["diary"], "labelled_predicted": std_l["predicted"],
           "trained_diary": std_t["diary"]}
    if cells is not None:
        m = consistency(cells)
        blocks, std = {k: m @ v for k, v in blocks.items()}, _projected_std(std, m)
    return Sums(**blocks, std=std, kinds=cell_kinds(cells))


def _projected_std(std: dict[str, float], m: np.ndarray) -> dict[str, np.ndarray]:
    """The noise standard deviation per cell [cells, 1] of sums projected by `m` (`consistency`)."""
    scale = np.sqrt(np.clip(np.diag(m), 0.0, 1.0))[:, None]
    return {k: s * scale for k, s in std.items()}


def national(trained: ppi.Group, labelled: ppi.Group, sensor_predicted: np.ndarray,
             std: dict[str, float], labelled_mech: Mechanism, trained_mech: Mechanism,
             rng_labelled: np.random.Generator, rng_trained: np.random.Generator, cells: list[tuple[str, str]],
             day_minutes: float) -> tuple[ppi.Table, dict[str, np.ndarray]]:
    """One NSO's DP release of PPI++, as it runs it: the diary groups' sums released beside the
    sensor-only sums already released (`sensor_predicted`; `std` = the noise of one NSO's sums,
    national.Setting.ppi_noise_std), made consistent, estimated; and its share of the pooled rows
    (its released sums: summed over NSOs they are the pooled release, post-processing)."""
    sums = release(trained, labelled, sensor_predicted, std["sensor_predicted"], labelled_mech, trained_mech,
                   rng_labelled, rng_trained, cells)
    return estimate(sums, day_minutes), pooling(sums)


def _days(sums: np.ndarray, day_minutes: float) -> np.ndarray:
    return np.maximum(sums.sum(axis=1) / day_minutes, 1.0)[:, None]


def _ratio_noise(v_num: np.ndarray, v_sum: np.ndarray, cov: np.ndarray, theta: np.ndarray, days: np.ndarray,
                 k: int, day_minutes: float) -> np.ndarray:
    """Noise variance of numerator / days when days = (a block of k noisy sums, each with noise
    variance v_sum) summed / day_minutes and the numerator's noise (variance v_num) has covariance
    `cov` with each of those sums (delta method): the denominator's noise cancels part of the
    numerator's (large shares) or adds to it (k large)."""
    return (v_num - 2 * theta * cov / day_minutes + theta ** 2 * k * v_sum / day_minutes ** 2) / days ** 2


@dataclass(frozen=True)
class Parts:
    """The two independent estimates [cells, K] from the released sums, the noise variance each
    carries (public), the held-out persons' diary ratio (only to read the sampling variances) and
    the released person-days [cells, 1]."""

    theta_t: np.ndarray
    theta_l: np.ndarray
    theta_p: np.ndarray
    noise_t: np.ndarray
    noise_l: np.ndarray
    noise_p: np.ndarray
    days_t: np.ndarray
    days_l: np.ndarray


def parts(sums: Sums, day_minutes: float, lam: float = DP_LAMBDA) -> Parts:
    d_s, d_t, d_l = (_days(x, day_minutes) for x in (sums.sensor_predicted, sums.trained_diary, sums.labelled_diary))
    v = {name: np.broadcast_to(x ** 2, (len(d_t), 1)) for name, x in sums.std.items()}
    k = sums.trained_diary.shape[1]
    th_t, th_l, th_s = sums.trained_diary / d_t, sums.labelled_diary / d_l, sums.sensor_predicted / d_s
    resid = (sums.labelled_diary - lam * sums.labelled_predicted) / d_l
    vt, vl, vs, vf = v["trained_diary"], v["labelled_diary"], v["sensor_predicted"], v["labelled_predicted"]
    return Parts(
        theta_t=th_t, theta_l=th_l, theta_p=lam * th_s + resid,
        noise_t=_ratio_noise(vt, vt, vt, th_t, d_t, k, day_minutes),
        noise_l=_ratio_noise(vl, vl, vl, th_l, d_l, k, day_minutes),
        noise_p=lam ** 2 * _ratio_noise(vs, vs, vs, th_s, d_s, k, day_minutes)
        + _ratio_noise(vl + lam ** 2 * vf, vl, vl, resid, d_l, k, day_minutes),
        days_t=d_t, days_l=d_l)


def _dispersion(excess: np.ndarray, scale: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per activity [K]: the method-of-moments dispersion sum_c excess / sum_c scale over cells,
    shrunk towards the all-activity figure with one cell's worth of weight and kept >= 0, and its
    Satterthwaite degrees of freedom (the squared differences `squares` as independent chi-square
    terms; the prior's cell counted once)."""
    overall = excess.sum() / max(scale.sum(), 1e-300)
    prior = scale.sum() / scale.size  # one (cell, activity)'s worth of scale per activity
    psi = np.maximum((excess.sum(0) + prior * overall) / np.maximum(scale.sum(0) + prior, 1e-300), 0.0)
    terms = np.vstack([squares, squares.mean(0, keepdims=True)])
    return psi, terms.sum(0) ** 2 / np.maximum((terms ** 2).sum(0), 1e-300)


@dataclass(frozen=True)
class Sampling:
    """Sampling variances [cells, K] read from a release and the degrees of freedom [cells, K] of each."""

    var_t: np.ndarray
    var_p: np.ndarray
    df_t: np.ndarray
    df_p: np.ndarray


def _dispersion_by_kind(excess: np.ndarray, scale: np.ndarray, squares: np.ndarray,
                        kinds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """`_dispersion` [cells, K] read separately over each kind of cell (`cell_kinds`): one psi for
    all let the many breakdown cells set the overall cell's variance too low (measured on seed 0's
    run, DP intervals of national overall rows at x16 persons: 93.3 % with one psi, 94.3 % with two;
    split by weekday/weekend against the rest instead: 93.2 %)."""
    if kinds is None:
        psi, df = _dispersion(excess, scale, squares)
        return np.broadcast_to(psi, excess.shape), np.broadcast_to(df, excess.shape)
    psi, df = np.zeros(excess.shape), np.zeros(excess.shape)
    for kind in np.unique(kinds):
        m = kinds == kind
        psi[m], df[m] = _dispersion(excess[m], scale[m], squares[m])
    return psi, df


def sampling_from_release(p: Parts, day_minutes: float, kinds: np.ndarray | None = None) -> Sampling:
    """The sampling variances [cells, K] of the trained persons' ratio and of PPI++, read from the
    release alone. Model: a cell's sampling variance is psi x theta (D - theta) / released
    person-days (a share of the day, over-dispersed; psi absorbs days per person), one psi per
    activity, estimate and kind of cell (overall, breakdowns: `_dispersion_by_kind`). Two moment equations over independent groups give them:
    the trained and the held-out persons' diary ratios differ by sampling and noise only,
    E[(theta_t - theta_l)^2] = psi_y base (1/d_t + 1/d_l) + noise_t + noise_l; and PPI++ (held-out
    and sensor-only persons) against the trained ratio, E[(theta_p - theta_t)^2] = psi_y base / d_t
    + psi_p base / d_l + noise_t + noise_p (its sampling variance scales with the held-out persons'
    days, which its residual term rests on). A moment equation the noise swamps reads psi = 0: the
    interval is then the noise's, which is what dominates it."""
    theta = np.clip((p.theta_t * p.days_t + p.theta_l * p.days_l) / (p.days_t + p.days_l), 0.0, day_minutes)
    base = np.maximum(theta * (day_minutes - theta), 1e-9)
    sq_y, sq_p = (p.theta_t - p.theta_l) ** 2, (p.theta_p - p.theta_t) ** 2
    psi_y, df_t = _dispersion_by_kind(sq_y - p.noise_t - p.noise_l, base * (1 / p.days_t + 1 / p.days_l), sq_y, kinds)
    var_t = psi_y * base / p.days_t
    psi_p, df_p = _dispersion_by_kind(sq_p - var_t - p.noise_t - p.noise_p, base / p.days_l, sq_p, kinds)
    return Sampling(var_t, psi_p * base / p.days_l, df_t, df_p)


def estimate(sums: Sums, day_minutes: float, lam: float = DP_LAMBDA) -> ppi.Table:
    """Minutes per day from the released sums: the trained persons' diary ratio and PPI++ (held-out
    and sensor-only persons), independent, combined by the inverse of their variances - noise
    (known exactly) plus sampling (`sampling_from_release`) - all post-processing of the release.
    The 95 % interval uses Student's t at the Satterthwaite degrees of freedom of the estimated
    part of the variance (the noise part is known): wide where few cells inform the sampling
    variance and it matters, normal where the noise dominates."""
    p = parts(sums, day_minutes, lam)
    s = sampling_from_release(p, day_minutes, sums.kinds)
    var_t, var_p = p.noise_t + s.var_t, p.noise_p + s.var_p
    w = ppi.share_of_ppi(var_t, var_p)
    var = ppi.mix_variance(var_t, var_p, w)
    a, b = (1 - w) ** 2 * s.var_t, w ** 2 * s.var_p
    estimated = a + b  # one term at the smaller degrees of freedom (the two psi are read from shared sums)
    df = np.full(var.shape, np.inf)
    np.divide(var ** 2 * np.minimum(s.df_t, s.df_p), estimated ** 2, out=df, where=estimated > var * 1e-12)
    quantile = student_t.ppf(0.975, np.maximum(df, 1.0))
    return ppi.table(ppi.mix(p.theta_t, p.theta_p, w), var, quantile, day_minutes)


def pooling(sums: Sums) -> dict[str, np.ndarray]:
    """This NSO's share of the pooled DP estimate: its released sums (summed over NSOs they are the
    pooled release - post-processing, no further budget)."""
    return {"ppi_sensor": sums.sensor_predicted, "ppi_labelled_diary": sums.labelled_diary,
            "ppi_labelled_predicted": sums.labelled_predicted, "ppi_trained": sums.trained_diary,
            "ppi_nsos": np.ones(1)}


def pooled(total: dict[str, np.ndarray], std: dict[str, float], day_minutes: float,
           cells: list[tuple[str, str]] | None = None, project_sums: bool = False) -> ppi.Table:
    """The pooled rows from the sum over NSOs of `pooling`: `estimate` on the summed sums, whose noise
    is the NSOs' noise summed (`std` is one NSO's before the consistency step, which `cells` says the
    NSOs took - or, with `project_sums`, which is taken here on the summed sums: pooled-only
    publishing, pooled_release.py); the sampling variances are read from the pooled release itself."""
    nsos = float(total["ppi_nsos"][0])
    blocks = [total[k] for k in ("ppi_sensor", "ppi_labelled_diary", "ppi_labelled_predicted", "ppi_trained")]
    if cells is not None:
        m = consistency(cells)
        std = _projected_std(std, m)
        if project_sums:
            blocks = [m @ b for b in blocks]
    sums = Sums(*blocks, {k: v * np.sqrt(nsos) for k, v in std.items()}, cell_kinds(cells))
    return estimate(sums, day_minutes)

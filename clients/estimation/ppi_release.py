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
are complete). Sensitivity of every block: a person's first max_days days add at most max_days x
day_minutes minutes (L2 <= L1 for non-negative minutes) to one cell of each breakdown.

Every block of noisy sums is then made consistent (`consistency`): each breakdown's categories must
add up to the overall cell, as the exact sums do, and the least-squares projection onto that removes
noise for free (the overall cell's noise variance falls to about 1 / (1 + sum over breakdowns of
1 / categories) of its own).

The estimate combines the trained persons' diary ratio with PPI++ at lambda = 1 (tuning lambda on
the trained persons would spend their budget once more), weighted by the noise the released sums
carry, which is public (noise scales, released sums): the published point estimate is
post-processing of the release. What this cannot do, measured (docs/time_use.md): weights from the
noise alone never let the model pay off - its benefit is a sampling covariance (between held-out
diaries and predictions) that only a DP estimate of second moments would reveal - so where the
noise dominates (epsilon 1 at these sample sizes) the estimate is essentially the trained persons'
noisy diaries, a little worse than a DP diary sample released as one block.
The interval adds the sampling variance the NSO computes from its microdata (ppi.parts_by_cell):
like ACC's bootstrap intervals a quality figure beside the release, not covered by its epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ppi
from .release import Mechanism, minutes_sensitivity

DP_LAMBDA = 1.0  # lambda of the DP release (public, fixed before the data are seen)


def labelled_mechanism(z: float, delta: float, partitions: int, max_days: int, day_minutes: float) -> Mechanism:
    s = minutes_sensitivity(partitions, max_days, day_minutes)
    return Mechanism(z, {"diary": s, "predicted": s}, delta)


def trained_mechanism(z: float, delta: float, partitions: int, max_days: int, day_minutes: float) -> Mechanism:
    return Mechanism(z, {"diary": minutes_sensitivity(partitions, max_days, day_minutes)}, delta)


@dataclass(frozen=True)
class Sums:
    """The released (noisy) cell sums [cells, K] and the standard deviation of each one's noise (one
    number, or one per cell [cells, 1] after the consistency step)."""

    sensor_predicted: np.ndarray
    labelled_diary: np.ndarray
    labelled_predicted: np.ndarray
    trained_diary: np.ndarray
    std: dict[str, float | np.ndarray]


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
    return Sums(**blocks, std=std)


def _projected_std(std: dict[str, float], m: np.ndarray) -> dict[str, np.ndarray]:
    """The noise standard deviation per cell [cells, 1] of sums projected by `m` (`consistency`)."""
    scale = np.sqrt(np.clip(np.diag(m), 0.0, 1.0))[:, None]
    return {k: s * scale for k, s in std.items()}


def national(trained: ppi.Group, labelled: ppi.Group, sensor: ppi.Group, sensor_predicted: np.ndarray,
             std: dict[str, float], labelled_mech: Mechanism, trained_mech: Mechanism,
             rng_labelled: np.random.Generator, rng_trained: np.random.Generator, cells: list[tuple[str, str]],
             day_minutes: float) -> tuple[ppi.Table, dict[str, np.ndarray]]:
    """One NSO's DP release of PPI++, as it runs it: the diary groups' sums released beside the
    sensor-only sums already released (`sensor_predicted`; `std` = the noise of one NSO's sums,
    national.Setting.ppi_noise_std), made consistent, estimated; and its share of the pooled rows."""
    sums = release(trained, labelled, sensor_predicted, std["sensor_predicted"], labelled_mech, trained_mech,
                   rng_labelled, rng_trained, cells)
    sampling = ppi.parts_by_cell(trained, labelled, sensor, np.full(trained.y.shape[2], DP_LAMBDA))
    return estimate(sums, sampling, day_minutes), pooling(sums, sampling, day_minutes)


def _days(sums: np.ndarray, day_minutes: float) -> np.ndarray:
    return np.maximum(sums.sum(axis=1) / day_minutes, 1.0)[:, None]


def estimate(sums: Sums, sampling: ppi.CellParts, day_minutes: float, lam: float = DP_LAMBDA) -> ppi.Table:
    """Minutes per day from the released sums: the trained persons' diary ratio and PPI++ (held-out
    and sensor-only persons), independent, combined by the inverse variance of the noise each
    carries (known exactly). The interval adds the sampling variances `sampling` (computed with the
    same lambda); a cell the microdata cannot give one for gets the widest a share of the day can have."""
    d_s, d_t = _days(sums.sensor_predicted, day_minutes), _days(sums.trained_diary, day_minutes)
    d_l = _days(sums.labelled_diary, day_minutes)
    theta_t = sums.trained_diary / d_t
    theta_p = lam * sums.sensor_predicted / d_s + (sums.labelled_diary - lam * sums.labelled_predicted) / d_l
    v = {k: x ** 2 for k, x in sums.std.items()}
    shape = theta_t.shape
    noise_t = np.broadcast_to(v["trained_diary"] / d_t ** 2, shape)
    noise_p = np.broadcast_to(lam ** 2 * v["sensor_predicted"] / d_s ** 2
                              + (v["labelled_diary"] + lam ** 2 * v["labelled_predicted"]) / d_l ** 2, shape)
    w = ppi.share_of_ppi(noise_t, noise_p)
    samp_t, samp_p = _quality_variances(sampling, day_minutes)
    var = ppi.mix_variance(noise_t + samp_t, noise_p + samp_p, w)
    quantile = np.where(np.isfinite(sampling.quantile), sampling.quantile, ppi.Z95)
    return ppi.table(ppi.mix(theta_t, theta_p, w), var, quantile, day_minutes)


def _quality_variances(sampling: ppi.CellParts, day_minutes: float) -> tuple[np.ndarray, np.ndarray]:
    widest = day_minutes ** 2 / 4
    return (np.where(np.isfinite(sampling.var_t), sampling.var_t, widest),
            np.where(np.isfinite(sampling.var_p), sampling.var_p, widest))


def pooling(sums: Sums, sampling: ppi.CellParts, day_minutes: float) -> dict[str, np.ndarray]:
    """This NSO's share of the pooled DP estimate: its released sums (summed over NSOs they are the
    pooled release - post-processing, no further budget) and, for the pooled interval (a quality
    figure beside the release, like the national intervals and n2var), its sampling variances, at
    most day_minutes^2, weighted by its released (noisy) person-days: no exact count leaves the NSO."""
    d_t = _days(sums.trained_diary, day_minutes)[:, 0]
    d_l = _days(sums.labelled_diary, day_minutes)[:, 0]
    var_t, var_p = (np.minimum(v, day_minutes ** 2) for v in _quality_variances(sampling, day_minutes))
    return {"ppi_sensor": sums.sensor_predicted, "ppi_labelled_diary": sums.labelled_diary,
            "ppi_labelled_predicted": sums.labelled_predicted, "ppi_trained": sums.trained_diary,
            "ppi_t2var": d_t[:, None] ** 2 * var_t, "ppi_l2var": d_l[:, None] ** 2 * var_p, "ppi_t": d_t, "ppi_l": d_l,
            "ppi_nsos": np.ones(1)}


def pooled(total: dict[str, np.ndarray], std: dict[str, float], day_minutes: float,
           cells: list[tuple[str, str]] | None = None) -> ppi.Table:
    """The pooled rows from the sum over NSOs of `pooling`: `estimate` on the summed sums, whose noise
    is the NSOs' noise summed (`std` is one NSO's before the consistency step, which `cells` says the
    NSOs took), with the NSOs' sampling variances pooled."""
    nsos = float(total["ppi_nsos"][0])
    if cells is not None:
        std = _projected_std(std, consistency(cells))
    sums = Sums(total["ppi_sensor"], total["ppi_labelled_diary"], total["ppi_labelled_predicted"], total["ppi_trained"],
                {k: v * np.sqrt(nsos) for k, v in std.items()})
    cells = len(total["ppi_t"])
    sampling = ppi.CellParts(np.zeros_like(total["ppi_trained"]),
                             total["ppi_t2var"] / np.maximum(total["ppi_t"], 1.0)[:, None] ** 2,
                             np.zeros_like(total["ppi_trained"]),
                             total["ppi_l2var"] / np.maximum(total["ppi_l"], 1.0)[:, None] ** 2, np.full(cells, ppi.Z95))
    return estimate(sums, sampling, day_minutes)

"""Repeated samples from a simulated population: how large the time-use errors are and how often the
intervals hold the population's truth, with the released model fixed (issue 20).

The population is an independent simulated sample of `scale` x each NSO's diary persons (the
generator's stream 2), persons and diaries known. A replication draws each NSO's trained, held-out
labelled and sensor-only persons with replacement from that NSO's population persons, as many as
the run's split has: independent draws from the population's distribution, whose mean minutes per
day in a cell are exactly the truth the errors and the coverage are measured against. The model is
the one the run released: the study is conditional on it, as the prediction-powered intervals are
(given the model, the NSOs' samples are independent, so the pooled variance is the sum of the
national ones). Each replication runs the code the NSOs and the coordinator run (ppi.by_cell,
national.pooling_blocks, national.pooled_rows) and, beside the default estimate, what a
methodologist has without the model - the diary sample alone (trained + labelled persons) - and
classify-and-count over the sensor-only persons (hard labels and probabilities).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from clients.estimation import pooled_release, ppi, ppi_release
from clients.estimation.cells import cell_persons, membership, per_person_day, person_days
from clients.estimation.estimate_steps import predict
from clients.estimation.national import Setting, pooled_rows, pooling_blocks, setting_from_json
from clients.model import released_model
from datasets.dataset import Dataset
from datasets.errors import UserError
from datasets.inference_data import load_sample, sample_of
from datasets.io import fingerprint
from datasets.prepared import read_index
from datasets.synthetic.generator import generate_population
from server.time_use import RELEASE_FILE

from ..config import load_config
from ..experiment import load_data, prepared_dir
from .prepare import prepare_sensor_only



@dataclass(frozen=True)
class NSOPopulation:
    """One NSO's population persons, per person and cell: person-days d [P, C] and minutes [P, C, K]
    of the true activity (y), the predicted probabilities (f) and the predicted label (h); y_dp and
    f_dp with every person-day clipped to the DP release's L2 bound (cells.clip_days), as the NSOs
    clip what they release under DP (y and f themselves without a bound)."""

    d: np.ndarray
    y: np.ndarray
    f: np.ndarray
    h: np.ndarray
    y_dp: np.ndarray
    f_dp: np.ndarray
    days_clipped: float = 0.0  # share of its diary person-days the DP bound clips

    @property
    def truth(self) -> np.ndarray:
        return self.y.sum(0) / np.maximum(self.d.sum(0), 1e-12)[:, None]


def nso_population(dataset: Dataset, nso: str, model, st: Setting, dp_bound: float | None = None) -> NSOPopulation:
    in_nso = dataset.windows["nso"].astype(str) == nso
    sample = sample_of(dataset.windows[in_nso.to_numpy()], dataset.persons, dataset.schema)
    days = person_days(sample, st.cfg.max_days)
    member = membership(sample, days, st.cells)
    p = predict(model, sample.x, st.wellbeing_range)
    k, wm = len(st.labels), st.window_minutes
    values = {"y": np.eye(k)[sample.y], "f": p.proba, "h": np.eye(k)[p.label]}
    per = {name: cell_persons(sample, days, member, per_person_day(v * wm, days)) for name, v in values.items()}
    dp = {name: cell_persons(sample, days, member, per_person_day(values[name] * wm, days, dp_bound))[1]
          if dp_bound is not None else per[name][1] for name in ("y", "f")}
    clipped = 0.0
    if dp_bound is not None:
        clipped = float((np.linalg.norm(per_person_day(values["y"] * wm, days), axis=1) > dp_bound).mean())
    return NSOPopulation(per["y"][0], per["y"][1], per["f"][1], per["h"][1], dp["y"], dp["f"], clipped)


def sample_sizes(inf_dir: Path, nso: str) -> dict[str, int]:
    """Persons per role in the run's own split: the sizes every replication draws."""
    return {kind: load_sample(inf_dir, kind, nso).persons for kind in ("trained", "labelled", "sensor")}


@dataclass
class Replication:
    """Estimates of every estimator [nso (national ones, then ALL), cells, K], and the intervals of
    the estimators that publish one."""

    estimates: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]


def _pool_tables(parts: list[tuple[ppi.Table, np.ndarray, np.ndarray]], st: Setting) -> tuple[np.ndarray, ...]:
    """The coordinator's pooled rows (pooling_blocks summed, pooled_rows) of one estimator's national tables."""
    total = None
    for table, cc, n in parts:
        zeros = np.zeros_like(table.estimate)
        b = pooling_blocks(table.estimate, table.variance, cc, n, zeros, n, st.day_minutes)
        total = b if total is None else {k: total[k] + b[k] for k in b}
    k = len(st.labels)
    rows, _ = pooled_rows({**total, "wb": np.zeros(k), "wb_n": np.zeros(k)}, st)
    col = lambda key: np.array([r[key] for r in rows]).reshape((len(st.cells), k))  # noqa: E731
    return col("minutes"), col("ci_low"), col("ci_high")


GRID_STEP = 2 * 4.0 / 2 ** 22  # SecAgg+'s grid of the pooling exchange at the default quantization range


def pooled_only(dp: Setting, nsos: int) -> Setting:
    """The DP setting with publish = "pooled" (pooled_release.py): each of the `nsos` NSOs adds a
    share of the noise. The replications draw the shares as Gaussians on the exact sums; the grid's
    rounding (at most one step, some 10^-6 of a block's bound) enters only the accounted noise."""
    return replace(dp, cfg=dp.cfg.model_copy(update={"publish": "pooled"}), nsos=nsos, grid_step=GRID_STEP)


def _pooled_only_rows(shares: dict[str, np.ndarray], share_std: dict[str, float], st: Setting,
                      nsos: int) -> tuple[np.ndarray, ...]:
    """Pooled-only publishing: the sum of every NSO's noise share, projected and estimated once;
    (estimate, low, high) [nsos + 1, cells, K], nan on the national rows (none is published)."""
    p = ppi_release.pooled({**shares, "ppi_nsos": np.array([float(nsos)])}, share_std, st.day_minutes, st.cells,
                           project_sums=True)
    blank = np.full((nsos,) + p.estimate.shape, np.nan)
    return tuple(np.concatenate([blank, v[None]]) for v in (p.estimate, p.low, p.high))


def replicate(pops: dict[str, NSOPopulation], sizes: dict[str, dict[str, int]], st: Setting,
              rng: np.random.Generator, dp: Setting | None = None) -> Replication:
    """One replication: every NSO's samples drawn anew, estimated as the NSOs would, and pooled; with
    `dp` (a setting with an epsilon) also the DP release of PPI++ (ppi_release.py) and, beside it,
    the DP diary sample alone and DP classify-and-count, their noise drawn as the NSOs would."""
    ratios: dict[str, list] = {}  # estimator -> per NSO (numerator [C, K], denominator [C])
    tables: dict[str, list] = {"default": [], **({"dp_default": []} if dp else {})}
    dp_total = None
    if dp:  # the mechanisms every NSO uses, calibrated once
        (sensor_mech, _), (lab_mech, tr_mech), std = dp.mechanisms(), dp.ppi_mechanisms(), dp.ppi_noise_std()
        shared = pooled_only(dp, len(pops))
        share_std = shared.pooled_noise_std()
        shares = None
    for nso, pop in pops.items():
        n_p = len(pop.d)
        t, lab, s = (rng.integers(0, n_p, sizes[nso][kind]) for kind in ("trained", "labelled", "sensor"))
        tr, la, se = (ppi.Group(pop.d[t], pop.y[t], pop.f[t]), ppi.Group(pop.d[lab], pop.y[lab], pop.f[lab]),
                      ppi.Group(pop.d[s], f=pop.f[s]))
        diary = np.concatenate([t, lab])
        n = pop.d[s].sum(0)
        for name, num, den in (("diary", pop.y[diary].sum(0), pop.d[diary].sum(0)), ("cc", pop.f[s].sum(0), n),
                               ("cc_hard", pop.h[s].sum(0), n)):
            ratios.setdefault(name, []).append((num, den))
        cc = pop.f[s].sum(0) / np.maximum(n, 1.0)[:, None]
        tables["default"].append((ppi.by_cell(tr, la, se, st.day_minutes), cc, np.maximum(n, 1.0)))
        if dp:  # what the NSOs release under DP: every person-day clipped to the bound
            tr, la = ppi.Group(pop.d[t], pop.y_dp[t], pop.f_dp[t]), ppi.Group(pop.d[lab], pop.y_dp[lab], pop.f_dp[lab])
            noisy = sensor_mech.apply({"minutes": pop.f_dp[s].sum(0)}, rng)["minutes"]
            table, b = ppi_release.national(tr, la, noisy, std, lab_mech, tr_mech, rng, rng, st.cells, st.day_minutes)
            n_dp = np.maximum(noisy.sum(1) / st.day_minutes, 1.0)
            tables["dp_default"].append((table, noisy / n_dp[:, None], n_dp))
            dp_total = b if dp_total is None else {k: dp_total[k] + b[k] for k in b}
            exact = {"ppi_sensor": pop.f_dp[s].sum(0), "ppi_labelled_diary": la.y.sum(0),
                     "ppi_labelled_predicted": la.f.sum(0), "ppi_trained": tr.y.sum(0)}
            share = {k: v + rng.normal(0.0, share_std[pooled_release.NOISY_SUMS[k]], v.shape) for k, v in exact.items()}
            shares = share if shares is None else {k: shares[k] + share[k] for k in share}
            ratios.setdefault("dp_cc", []).append((noisy, n_dp))
            diary_noisy = tr_mech.apply({"diary": pop.y_dp[diary].sum(0)}, rng)["diary"]  # one mechanism, all diary persons
            ratios.setdefault("dp_diary", []).append((diary_noisy, np.maximum(diary_noisy.sum(1) / st.day_minutes, 1.0)))
    estimates, low, high = {}, {}, {}
    for name, per in ratios.items():  # minutes per day, kept within the day as the NSOs' tables are
        clip = lambda a: np.clip(a, 0.0, st.day_minutes)  # noqa: E731
        national = [clip(num / np.maximum(den, 1.0)[:, None]) for num, den in per]
        pooled = clip(sum(num for num, _ in per) / np.maximum(sum(den for _, den in per), 1.0)[:, None])
        estimates[name] = np.stack(national + [pooled])
    if dp:
        for out, v in zip((estimates, low, high), _pooled_only_rows(shares, share_std, st, len(pops))):
            out["dp_pooled_only"] = v
    for name, per in tables.items():
        if name == "dp_default":  # the coordinator's pooled DP rows: from the summed released sums
            p = ppi_release.pooled(dp_total, std, st.day_minutes, st.cells)
            p_est, p_low, p_high = p.estimate, p.low, p.high
        else:
            p_est, p_low, p_high = _pool_tables(per, st)
        estimates[name] = np.stack([t.estimate for t, _, _ in per] + [p_est])
        low[name] = np.stack([t.low for t, _, _ in per] + [p_low])
        high[name] = np.stack([t.high for t, _, _ in per] + [p_high])
    return Replication(estimates, low, high)


def pooled_truth(pops: dict[str, NSOPopulation]) -> np.ndarray:
    return sum(p.y.sum(0) for p in pops.values()) / np.maximum(sum(p.d.sum(0) for p in pops.values()), 1e-12)[:, None]


def row_types(st: Setting, nsos: int) -> dict[str, np.ndarray]:
    """Masks [nsos + 1, cells] of the row types reported: national overall rows, each breakdown's
    national rows, all national breakdown rows, and the pooled rows (every cell)."""
    groups = np.array([g for g, _ in st.cells])
    national = np.arange(nsos + 1)[:, None] < nsos
    types = {"overall": national & (groups == "all")[None]}
    for g in dict.fromkeys(groups[1:]):
        types[f"breakdown:{g}"] = national & (groups == g)[None]
    types["breakdowns"] = national & (groups != "all")[None]
    types["pooled"] = ~national & np.ones(len(groups), bool)[None]
    return types


def _ideal_variances(pop: NSOPopulation, size: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per cell and activity [C, K]: the variance of the best combination of the trained persons'
    diaries and PPI++ that this model allows (population variances and the optimal lambda known,
    the run's sample sizes), and the diary sample's variance."""
    ideal, diary = np.full(pop.truth.shape, np.nan), np.full(pop.truth.shape, np.nan)
    for c in range(pop.d.shape[1]):
        who = pop.d[:, c] > 0
        d, share = pop.d[who, c], who.mean()
        if len(d) < 3:
            continue
        score = lambda v: (v - np.outer(d, v.sum(0) / d.sum())) / d.mean()  # noqa: E731
        sy, sf = score(pop.y[who, c]), score(pop.f[who, c])
        vy, vf = sy.var(0), sf.var(0)
        lam = np.where(vf > 0, ((sy - sy.mean(0)) * (sf - sf.mean(0))).mean(0) / np.where(vf > 0, vf, 1), 0.0)
        vr = (sy - lam * sf).var(0)
        nt, nl, m = (max(size[kind] * share, 1.0) for kind in ("trained", "labelled", "sensor"))
        ideal[c] = 1.0 / (nt / np.maximum(vy, 1e-12) + 1.0 / np.maximum(vr / nl + lam ** 2 * vf / m, 1e-12))
        diary[c] = vy / (nt + nl)
    return ideal, diary


def attainable(pops: dict[str, NSOPopulation], sizes: dict[str, dict[str, int]], types: dict[str, np.ndarray]) -> dict:
    """Per row type, the error relative to the diary sample's that the best estimator of this kind
    could reach with this model (standard deviations summed over the row type's cells): the frontier
    the default estimate is measured against, which only a better model moves."""
    parts = [_ideal_variances(pops[n], sizes[n]) for n in pops]
    share = np.stack([p.d.sum(0) for p in pops.values()]) / sum(p.d.sum(0) for p in pops.values())  # [nsos, C]
    ideal = np.stack([i for i, _ in parts] + [np.nansum(share[:, :, None] ** 2 * np.stack([i for i, _ in parts]), 0)])
    diary = np.stack([d for _, d in parts] + [np.nansum(share[:, :, None] ** 2 * np.stack([d for _, d in parts]), 0)])
    return {name: float(np.nansum(np.sqrt(ideal[mask])) / np.nansum(np.sqrt(diary[mask]))) for name, mask in types.items()}


def _measure(pops: dict[str, NSOPopulation], sizes: dict[str, dict[str, int]], st: Setting, dp: Setting | None,
             replications: int, rng: np.random.Generator, progress: Callable[[str], None] | None) -> dict:
    """Per row type: each estimator's mean absolute error against the population, and coverage and
    width of the intervals of those that publish one."""
    nsos = list(pops)
    truth = np.stack([pops[n].truth for n in nsos] + [pooled_truth(pops)])
    errors, held, width = {}, {}, {}
    for r in range(replications):
        rep = replicate(pops, sizes, st, rng, dp)
        for e, v in rep.estimates.items():
            errors.setdefault(e, []).append(np.abs(v - truth))
        for e in rep.low:
            held.setdefault(e, []).append((rep.low[e] <= truth) & (truth <= rep.high[e]))
            width.setdefault(e, []).append(rep.high[e] - rep.low[e])
        if progress and (r + 1) % max(1, replications // 5) == 0:
            progress(f"    replication {r + 1}/{replications}")
    err = {e: np.stack(v) for e, v in errors.items()}  # [R, nsos + 1, cells, K]
    persons = {kind: np.stack([sizes[n][kind] * (pops[n].d > 0).mean(0) for n in nsos]) for kind in ("sensor", "labelled", "trained")}
    out = {}
    for name, mask in row_types(st, len(nsos)).items():
        sel = lambda a: a[:, mask]  # noqa: E731  [R, rows, K]
        ok = np.isfinite(sel(err["default"]))
        row = {"mae_minutes": {e: _mean_finite(np.where(ok, sel(v), np.nan)) for e, v in err.items()},
               "coverage": {e: float(sel(np.stack(v))[ok & np.isfinite(sel(err[e]))].mean())
                            if np.isfinite(sel(err[e])).any() else float("nan") for e, v in held.items()},
               "ci_width_minutes": {e: float(sel(np.stack(v))[ok].mean()) for e, v in width.items()},
               "cells_not_estimated": float(1.0 - ok.mean())}
        if name != "pooled":
            row["persons_per_cell"] = {k: float(v[mask[:-1]].mean()) for k, v in persons.items()}
        out[name] = row
    return out


def _mean_finite(a: np.ndarray) -> float:
    """Mean over the finite values; nan where there are none (an estimator a row type does not publish)."""
    finite = np.isfinite(a)
    return float(a[finite].mean()) if finite.any() else float("nan")


def study(dataset: Dataset, model, st: Setting, inf_dir: Path, replications: int, seed: int,
          progress: Callable[[str], None] | None = None, epsilon: float | None = None,
          size_scales: tuple[float, ...] = ()) -> dict:
    """Errors and interval coverage per row type over `replications` draws from the population
    `dataset` (generate_population): mean absolute error of each estimator, the default's error
    relative to the diary sample's and to classify-and-count's, the best such ratio the model allows
    (`attainable`), coverage, interval width, and how many cells could not be estimated. With an
    `epsilon`, the DP release beside it (its error growth over the non-private estimate's, its
    coverage), also with every sample `size_scales` x larger (the model fixed)."""
    nsos = [str(c) for c in dataset.windows["nso"].astype(str).unique()]
    dp = None
    if epsilon is not None:
        dp = replace(st, cfg=st.cfg.model_copy(update={"epsilon": epsilon, "estimator": "ppi"}))
    pops = {nso: nso_population(dataset, nso, model, st, dp.day_bound if dp else None) for nso in nsos}
    sizes = {nso: sample_sizes(inf_dir, nso) for nso in nsos}
    rng = np.random.default_rng([seed, 20])
    measured = _measure(pops, sizes, st, dp, replications, rng, progress)
    best = attainable(pops, sizes, row_types(st, len(nsos)))
    out = {"replications": replications, "population_persons": int(sum(len(p.d) for p in pops.values())),
           "sample_persons": sizes, "epsilon": epsilon, "row_types": {}}
    if dp is not None:
        out["day_clip"] = {"share_of_day": dp.cfg.day_clip, "bound_minutes": dp.day_bound,
                           "diary_days_clipped": float(np.mean([p.days_clipped for p in pops.values()]))}
    for name, row in measured.items():
        mae = row["mae_minutes"]
        out["row_types"][name] = {
            "mae_minutes": mae, "ratio_to_diary": mae["default"] / mae["diary"],
            "ratio_to_classify_count": mae["default"] / mae["cc"],
            "ratio_to_classify_count_hard": mae["default"] / mae["cc_hard"], "attainable_ratio_to_diary": best[name],
            "coverage": row["coverage"]["default"], "ci_width_minutes": row["ci_width_minutes"]["default"],
            "cells_not_estimated": row["cells_not_estimated"]}
    if dp is not None:
        out["dp_scales"] = {"1": {name: _dp_figures(row) for name, row in measured.items()}}
        for scale in size_scales:
            if progress:
                progress(f"    samples x{scale:g}")
            bigger = {n: {k: max(1, int(round(v * scale))) for k, v in z.items()} for n, z in sizes.items()}
            rows = _measure(pops, bigger, st, dp, replications, rng, progress)
            out["dp_scales"][f"{scale:g}"] = {name: _dp_figures(row) for name, row in rows.items()}
    return out


def _dp_figures(row: dict) -> dict:
    """A row type's DP figures, from a `_measure` with a DP setting."""
    mae = row["mae_minutes"]
    return {"dp_mae_minutes": {e: mae[e] for e in ("dp_default", "dp_diary", "dp_cc", "dp_pooled_only")},
            "dp_growth_minutes": mae["dp_default"] - mae["default"], "non_private_mae_minutes": mae["default"],
            "dp_coverage": row["coverage"]["dp_default"], "persons_per_cell": row.get("persons_per_cell"),
            # publish = "pooled" (pooled rows only; nan on national rows, which it does not publish)
            "dp_pooled_only_growth_minutes": mae["dp_pooled_only"] - mae["default"],
            "dp_pooled_only_coverage": row["coverage"]["dp_pooled_only"]}


def replication_study(run_dir: Path, release_dir: Path, replications: int = 50, scale: float = 8.0,
                      progress: Callable[[str], None] | None = None, epsilon: float | None = None,
                      size_scales: tuple[float, ...] = ()) -> dict:
    """`study` for a finished time-use run (its config, data split and released model) and one of
    its non-private releases (its setting: cells, estimator, days per person)."""
    cfg = load_config(run_dir / "config.toml")
    if cfg.data.path:
        raise UserError("a replication study draws from a simulated population; the run's data are imported "
                        f"({cfg.data.path}); allowed: a run on simulated data ([data.generate])")
    st = setting_from_json(json.dumps(json.loads((release_dir / RELEASE_FILE).read_text())["setting"]))
    if st.cfg.epsilon is not None:
        raise UserError(f"{release_dir} is a DP release; the replication study measures the non-private estimate")
    dataset = load_data(cfg)
    data_dir = Path(prepared_dir(cfg, dataset, fingerprint(dataset.windows)))
    index = read_index(data_dir)
    model = released_model(run_dir / "model.npz", cfg.model, cfg.seed, index)
    if progress:
        progress(f"    population: {scale:g} x the diary persons per NSO")
    population = generate_population(cfg.data.generate, scale)
    subdir = prepare_sensor_only(cfg, dataset, str(data_dir))  # the run's split (a no-op when it is on disk)
    return study(population, model, st, data_dir / subdir, replications, cfg.seed, progress, epsilon, size_scales)

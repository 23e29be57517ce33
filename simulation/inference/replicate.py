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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clients.estimation import ppi
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

ESTIMATORS = ("default", "diary", "cc", "cc_hard")


@dataclass(frozen=True)
class NSOPopulation:
    """One NSO's population persons, per person and cell: person-days d [P, C] and minutes [P, C, K]
    of the true activity (y), the predicted probabilities (f) and the predicted label (h)."""

    d: np.ndarray
    y: np.ndarray
    f: np.ndarray
    h: np.ndarray

    @property
    def truth(self) -> np.ndarray:
        return self.y.sum(0) / np.maximum(self.d.sum(0), 1e-12)[:, None]


def nso_population(dataset: Dataset, nso: str, model, st: Setting) -> NSOPopulation:
    in_nso = dataset.windows["nso"].astype(str) == nso
    sample = sample_of(dataset.windows[in_nso.to_numpy()], dataset.persons, dataset.schema)
    days = person_days(sample, st.cfg.max_days)
    member = membership(sample, days, st.cells)
    p = predict(model, sample.x, st.wellbeing_range)
    k, wm = len(st.labels), st.window_minutes
    per = {name: cell_persons(sample, days, member, per_person_day(v * wm, days))
           for name, v in (("y", np.eye(k)[sample.y]), ("f", p.proba), ("h", np.eye(k)[p.label]))}
    return NSOPopulation(per["y"][0], per["y"][1], per["f"][1], per["h"][1])


def sample_sizes(inf_dir: Path, nso: str) -> dict[str, int]:
    """Persons per role in the run's own split: the sizes every replication draws."""
    return {kind: load_sample(inf_dir, kind, nso).persons for kind in ("trained", "labelled", "sensor")}


@dataclass
class Replication:
    """Estimates of every estimator [nso (national ones, then ALL), cells, K], and the interval."""

    estimates: dict[str, np.ndarray]
    low: np.ndarray
    high: np.ndarray


def replicate(pops: dict[str, NSOPopulation], sizes: dict[str, dict[str, int]], st: Setting,
              rng: np.random.Generator) -> Replication:
    """One replication: every NSO's samples drawn anew, estimated as the NSOs would, and pooled."""
    out = {e: [] for e in ESTIMATORS}
    low, high, total, hard = [], [], None, None
    for nso, pop in pops.items():
        n_p = len(pop.d)
        t, lab, s = (rng.integers(0, n_p, sizes[nso][kind]) for kind in ("trained", "labelled", "sensor"))
        table = ppi.by_cell(ppi.Group(pop.d[t], pop.y[t], pop.f[t]), ppi.Group(pop.d[lab], pop.y[lab], pop.f[lab]),
                            ppi.Group(pop.d[s], f=pop.f[s]), st.day_minutes)
        diary = np.concatenate([t, lab])
        diary_sums, diary_n = pop.y[diary].sum(0), pop.d[diary].sum(0)
        n = np.maximum(pop.d[s].sum(0), 1.0)
        cc, cc_hard = pop.f[s].sum(0) / n[:, None], pop.h[s].sum(0) / n[:, None]
        for name, v in (("default", table.estimate), ("diary", diary_sums / np.maximum(diary_n, 1)[:, None]),
                        ("cc", cc), ("cc_hard", cc_hard)):
            out[name].append(v)
        low.append(table.low)
        high.append(table.high)
        blocks = pooling_blocks(table.estimate, table.variance, cc, n, diary_sums, diary_n, st.day_minutes)
        total = blocks if total is None else {k: total[k] + blocks[k] for k in blocks}
        hard = n[:, None] * cc_hard if hard is None else hard + n[:, None] * cc_hard
    k = len(st.labels)
    rows, _ = pooled_rows({**total, "wb": np.zeros(k), "wb_n": np.zeros(k)}, st)
    shape = (len(st.cells), k)
    col = lambda key: np.array([r[key] for r in rows]).reshape(shape)  # noqa: E731
    pooled = {"default": col("minutes"), "diary": col("minutes_diary_sample"), "cc": col("minutes_classify_count"),
              "cc_hard": hard / np.maximum(total["n"], 1.0)[:, None]}
    return Replication({e: np.stack(out[e] + [pooled[e]]) for e in ESTIMATORS}, np.stack(low + [col("ci_low")]),
                       np.stack(high + [col("ci_high")]))


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


def study(dataset: Dataset, model, st: Setting, inf_dir: Path, replications: int, seed: int,
          progress: Callable[[str], None] | None = None) -> dict:
    """Errors and interval coverage per row type over `replications` draws from the population
    `dataset` (generate_population): mean absolute error of each estimator, the default's error
    relative to the diary sample's and to classify-and-count's, the best such ratio the model allows
    (`attainable`), coverage, interval width, and how many cells could not be estimated."""
    nsos = [str(c) for c in dataset.windows["nso"].astype(str).unique()]
    pops = {nso: nso_population(dataset, nso, model, st) for nso in nsos}
    sizes = {nso: sample_sizes(inf_dir, nso) for nso in nsos}
    truth = np.stack([pops[n].truth for n in nsos] + [pooled_truth(pops)])
    rng = np.random.default_rng([seed, 20])
    errors = {e: [] for e in ESTIMATORS}
    held, width = [], []
    for r in range(replications):
        rep = replicate(pops, sizes, st, rng)
        for e in ESTIMATORS:
            errors[e].append(np.abs(rep.estimates[e] - truth))
        held.append((rep.low <= truth) & (truth <= rep.high))
        width.append(rep.high - rep.low)
        if progress and (r + 1) % max(1, replications // 5) == 0:
            progress(f"    replication {r + 1}/{replications}")
    err = {e: np.stack(v) for e, v in errors.items()}  # [R, nsos + 1, cells, K]
    held_a, width_a = np.stack(held), np.stack(width)
    types = row_types(st, len(nsos))
    best = attainable(pops, sizes, types)
    out = {"replications": replications, "population_persons": int(sum(len(p.d) for p in pops.values())),
           "sample_persons": sizes, "row_types": {}}
    for name, mask in types.items():
        sel = lambda a: a[:, mask]  # noqa: E731  [R, rows, K]
        ok = np.isfinite(sel(err["default"]))
        mae = {e: float(np.nanmean(np.where(ok, sel(err[e]), np.nan))) for e in ESTIMATORS}
        out["row_types"][name] = {
            "mae_minutes": mae, "ratio_to_diary": mae["default"] / mae["diary"],
            "ratio_to_classify_count": mae["default"] / mae["cc"],
            "ratio_to_classify_count_hard": mae["default"] / mae["cc_hard"], "attainable_ratio_to_diary": best[name],
            "coverage": float(sel(held_a)[ok].mean()), "ci_width_minutes": float(sel(width_a)[ok].mean()),
            "cells_not_estimated": float(1.0 - ok.mean())}
    return out


def replication_study(run_dir: Path, release_dir: Path, replications: int = 50, scale: float = 8.0,
                      progress: Callable[[str], None] | None = None) -> dict:
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
    return study(population, model, st, data_dir / subdir, replications, cfg.seed, progress)

"""Judge a time-use release against the truth that only a simulation has: the sensor-only persons'
own diaries (datasets/inference_data.py keeps them in truth/, which nothing else reads).

Writes time_use.csv (one row per NSO - or ALL for the pooled figures - group and activity) and
returns the `time_use` block of summary.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from clients.estimation.cells import cell_sums, membership, per_person_day, person_days
from clients.estimation.national import Setting, setting_from_json
from datasets.atomic import atomic_write
from datasets.errors import UserError
from datasets.inference_data import TRUTH_DIR, load_sample
from server.time_use import QUALITY_FILE, RELEASE_FILE

from .figure import time_use_figure

TIME_USE_CSV = "time_use.csv"
COLUMNS = ["nso", "group", "activity", "minutes", "ci_low", "ci_high", "minutes_classify_count",
           "minutes_diary_sample", "true_minutes"]


def _truth(inf_dir: Path, nso: str, st: Setting) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true minutes summed per cell [cells, K], person-days per cell, true well-being sums and
    counts per true label [2, K]) of one NSO's sensor-only sample, on the release's person-days."""
    sample = load_sample(inf_dir, "sensor", nso)
    with np.load(inf_dir / TRUTH_DIR / f"truth-{nso}.npz") as z:
        y, wb = z["y"], z["wellbeing"]
    days = person_days(sample, st.cfg.max_days)
    onehot = np.eye(len(st.labels))[y]
    s, n = cell_sums(per_person_day(onehot * st.window_minutes, days), membership(sample, days, st.cells))
    kept = (days.of_window >= 0) & ~np.isnan(wb)
    wb_sums = np.stack([(onehot[kept] * wb[kept, None]).sum(axis=0), onehot[kept].sum(axis=0)])
    return s, n, wb_sums


def _group(g: str, c: str) -> str:
    return "all" if g == "all" else f"{g}:{c}"


def _with_truth(release: dict, inf_dir: Path, st: Setting) -> tuple[pd.DataFrame, dict | None]:
    """The evaluation table; without a truth folder (an imported sensor-only sample has no diaries)
    `true_minutes` is empty and the truth None."""
    table = pd.DataFrame([r for nat in release["national"].values() for r in nat["rows"]] + release["pooled"])
    if not (inf_dir / TRUTH_DIR).exists():
        table["true_minutes"] = np.nan
        return table[COLUMNS], None
    truth, total = {}, None
    for nso in release["national"]:
        s, n, wb = _truth(inf_dir, nso, st)
        total = (s, n, wb) if total is None else tuple(a + b for a, b in zip(total, (s, n, wb)))
        truth[nso] = (s / np.maximum(n, 1)[:, None], wb)
    truth["ALL"] = (total[0] / np.maximum(total[1], 1)[:, None], total[2])
    key = {(_group(g, c), a): (i, j) for i, (g, c) in enumerate(st.cells) for j, a in enumerate(st.labels)}
    table["true_minutes"] = [truth[r.nso][0][key[(r.group, r.activity)]] for r in table.itertuples()]
    return table[COLUMNS], truth


def _wellbeing_error(release: dict, truth: dict, st: Setting) -> float | None:
    errors = []
    for nso, estimates in [(n, r["wellbeing"]) for n, r in release["national"].items()] + [("ALL", release["pooled_wellbeing"])]:
        sums, counts = truth[nso][1]
        for j, a in enumerate(st.labels):
            if estimates.get(a) is not None and counts[j] > 0:
                errors.append(abs(estimates[a] - sums[j] / counts[j]))
    return float(np.mean(errors)) if errors else None


def read_release(run_dir: Path) -> dict:
    """release.json with quality.json's internal columns joined back into its rows (for evaluation)."""
    paths = [run_dir / RELEASE_FILE, run_dir / QUALITY_FILE]
    for path in paths:
        if not path.exists():
            raise UserError(f"{run_dir}: no {path.name}; the ServerApp did not finish the time-use estimation")
    release, quality = (json.loads(p.read_text()) for p in paths)

    def join(rows: list[dict], extra: list[dict]) -> list[dict]:
        return [{**r, **e} for r, e in zip(rows, extra, strict=True)]

    return {**release, "pooled": join(release["pooled"], quality["pooled"]),
            "national": {n: {**r, "rows": join(r["rows"], quality["national"][n])} for n, r in release["national"].items()}}


def evaluate_release(run_dir: Path, inf_dir: Path) -> dict:
    """time_use.csv and the summary block: errors of the corrected, classify-and-count and
    diary-sample figures against the truth, interval coverage, and the release's privacy."""
    release = read_release(run_dir)
    st = setting_from_json(json.dumps(release["setting"]))
    table, truth = _with_truth(release, inf_dir, st)
    atomic_write(run_dir / TIME_USE_CSV, lambda tmp: table.to_csv(tmp, index=False))
    eps_text = f"release epsilon {release['release_epsilon']:.2g}" if release["release_epsilon"] else "no DP release"
    time_use_figure(table, run_dir, f"minutes per day, {st.cfg.estimator.upper()} with {st.cfg.confusion} confusion "
                    f"matrices, {eps_text}")
    known = truth is not None
    err = lambda col: float((table[col] - table["true_minutes"]).abs().mean()) if known else None  # noqa: E731
    held = (table["ci_low"] <= table["true_minutes"]) & (table["true_minutes"] <= table["ci_high"])
    national = table["nso"] != "ALL"
    eps = {k: [r[k] for r in release["national"].values() if r[k] is not None] for k in ("epsilon_sensor", "epsilon_labelled")}
    return {
        "cells": int(len(table)),
        "truth": ("true_minutes: the sensor-only sample's own diaries (one sample's truth; `ppml bench time_use` "
                  "judges against the population's, over replications)") if known else
                 "none: the sensor-only sample is the NSOs' own (imported), without diaries; no error is measured",
        "mae_minutes": err("minutes"), "mae_minutes_classify_count": err("minutes_classify_count"),
        "mae_minutes_diary_sample": err("minutes_diary_sample"),
        "mae_minutes_national": float((table["minutes"] - table["true_minutes"])[national].abs().mean()) if known else None,
        "ci_coverage": float(held.mean()) if known else None,
        "ci_coverage_national": float(held[national].mean()) if known else None,
        "ci_width_minutes": float((table["ci_high"] - table["ci_low"]).mean()),
        "wellbeing_mae": _wellbeing_error(release, truth, st) if known else None,
        "release_epsilon": release["release_epsilon"], "delta": release["delta"],
        "epsilon_sensor_only": max(eps["epsilon_sensor"]) if eps["epsilon_sensor"] else None,
        "epsilon_labelled": max(eps["epsilon_labelled"]) if eps["epsilon_labelled"] else None,
        "estimator": st.cfg.estimator, "confusion": st.cfg.confusion, "pooled_via": release["pooled_via"],
        "release_number": st.release, "groups": [g for g in st.cfg.groups if g in st.available],
    }

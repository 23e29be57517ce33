"""`ppml bench time_use`: the time-use targets of issue 20 (docs/time_use.md), over seeds, on the
default data and model (experiments/baseline.toml; each seed a new population, split and training
run). Seeds start at 1: seed 0's population is where the estimator's variance smoothing was chosen.

- Replications (simulation/inference/replicate.py): with each seed's released model fixed, the
  samples are drawn again `replications` times from a simulated population 8x the diary persons,
  whose minutes are the truth. Per row type (overall, each breakdown, pooled): the default
  estimate's (PPI++ without DP) mean absolute error against the diary sample alone's (target: at
  most 0.7x) and classify-and-count's (at most 0.5x), the best ratio this model allows, and how
  often the 95 % intervals hold the population's truth (target 93-97 %).
- In the same replications, the person-level DP release of PPI++ at epsilon 1 (ppi_release.py),
  its noise drawn as the NSOs draw it: the error it adds to the non-private estimate's (targets:
  national overall rows at most 2 minutes, pooled rows at most 1), its coverage, and the same with
  every sample 4x and 16x larger (the model fixed), with the persons per cell that gives; beside it
  the DP diary sample alone and DP classify-and-count, all with every person-day clipped to the
  release's L2 bound (inference.day_clip), and how many person-days that bound clips; and the
  pooled rows published alone (inference.publish = "pooled"), every NSO adding a share of the noise.
Estimates use reproducible noise and replications a seeded generator, so a bench repeats.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import load_config
from ..experiment import run_experiment
from ..inference.estimate import estimate_run
from ..inference.replicate import replication_study

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
TARGETS = {"ratio_to_diary": 0.7, "ratio_to_classify_count": 0.5, "coverage": (0.93, 0.97),
           "dp_growth_minutes": {"overall": 2.0, "pooled": 1.0}}
POPULATION_SCALE = 8.0
EPSILON = 1.0
SIZE_SCALES = (4.0, 16.0)


def _row_types(runs: list[dict]) -> dict:
    """Per row type, the replications' figures pooled over seeds (errors averaged, then divided)."""
    out = {}
    for name in runs[0]["replicated"]["row_types"]:
        per = [r["replicated"]["row_types"][name] for r in runs]
        mae = {e: float(np.mean([p["mae_minutes"][e] for p in per])) for e in per[0]["mae_minutes"]}
        out[name] = {"mae_minutes": mae, "ratio_to_diary": mae["default"] / mae["diary"],
                     "ratio_to_classify_count": mae["default"] / mae["cc"],
                     "attainable_ratio_to_diary": float(np.mean([p["attainable_ratio_to_diary"] for p in per])),
                     "coverage": float(np.mean([p["coverage"] for p in per])),
                     "cells_not_estimated": float(np.mean([p["cells_not_estimated"] for p in per]))}
        t = out[name]
        t["meets_target"] = {"ratio_to_diary": t["ratio_to_diary"] <= TARGETS["ratio_to_diary"],
                             "ratio_to_classify_count": t["ratio_to_classify_count"] <= TARGETS["ratio_to_classify_count"],
                             "coverage": TARGETS["coverage"][0] <= t["coverage"] <= TARGETS["coverage"][1]}
    return out


def bench_time_use(seeds: int = 3, rounds: int = 30, replications: int = 50,
                   progress: Callable[[str], None] = print) -> dict:
    out: dict = {"benchmark": "time_use", "seeds": list(range(1, seeds + 1)), "rounds": rounds,
                 "replications": replications, "population_scale": POPULATION_SCALE,
                 "config": "experiments/baseline.toml", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in out["seeds"]:
            cfg = load_config(EXPERIMENTS / "baseline.toml", [f"seed={seed}", f"data.generate.seed={seed}",
                                                               f"federation.rounds={rounds}", f"output.dir='{tmp}'"])
            run = run_experiment(cfg, Path(tmp) / f"run{seed}", quiet=True)
            default = estimate_run(run, ["randomness='reproducible'"], Path(tmp) / f"e{seed}", quiet=True)
            progress(f"  seed {seed}: trained; {replications} replications of the samples (x1, then DP at "
                     + ", ".join(f"x{s:g}" for s in SIZE_SCALES) + ")")
            r = {"seed": seed, "replicated": replication_study(run, default, replications, POPULATION_SCALE, progress,
                                                               EPSILON, SIZE_SCALES)}
            out["runs"].append(r)
            rows, dp_rows = r["replicated"]["row_types"], r["replicated"]["dp_scales"]["1"]
            progress(f"  seed {seed}: " + "; ".join(
                f"{name} {rows[name]['mae_minutes']['default']:.1f} min (diary {rows[name]['mae_minutes']['diary']:.1f}, "
                f"CC {rows[name]['mae_minutes']['cc']:.1f}), coverage {rows[name]['coverage']:.1%}, epsilon 1 "
                f"+{dp_rows[name]['dp_growth_minutes']:.1f} min" for name in ("overall", "breakdowns", "pooled")))
            clip = r["replicated"]["day_clip"]
            progress(f"  seed {seed}: DP person-day bound {clip['bound_minutes']:.0f} min (day_clip {clip['share_of_day']:g}) "
                     f"clips {clip['diary_days_clipped']:.1%} of the population's diary person-days")
    out["row_types"] = _row_types(out["runs"])
    out["dp"] = _dp(out["runs"])
    out["targets"] = TARGETS
    dp1 = out["dp"]["1"]
    out["meets_target"] = {**{f"{name}:{k}": v for name, t in out["row_types"].items() for k, v in t["meets_target"].items()},
                           **{f"dp_growth:{name}": dp1[name]["dp_growth_minutes"] <= bound
                              for name, bound in TARGETS["dp_growth_minutes"].items()},
                           "dp_growth:pooled_only": dp1["pooled"]["dp_pooled_only_growth_minutes"]
                           <= TARGETS["dp_growth_minutes"]["pooled"]}
    return out


def _dp(runs: list[dict]) -> dict:
    """Per sample scale and row type, the DP figures averaged over seeds."""
    out = {}
    for scale in runs[0]["replicated"]["dp_scales"]:
        out[scale] = {}
        for name in runs[0]["replicated"]["dp_scales"][scale]:
            per = [r["replicated"]["dp_scales"][scale][name] for r in runs]
            mean = lambda f: float(np.mean([f(p) for p in per]))  # noqa: E731
            out[scale][name] = {
                "dp_growth_minutes": mean(lambda p: p["dp_growth_minutes"]),
                "non_private_mae_minutes": mean(lambda p: p["non_private_mae_minutes"]),
                "dp_mae_minutes": {e: mean(lambda p, e=e: p["dp_mae_minutes"][e]) for e in per[0]["dp_mae_minutes"]},
                "dp_coverage": mean(lambda p: p["dp_coverage"]),
                "dp_pooled_only_growth_minutes": mean(lambda p: p["dp_pooled_only_growth_minutes"]),
                "dp_pooled_only_coverage": mean(lambda p: p["dp_pooled_only_coverage"]),
                "persons_per_cell": ({k: mean(lambda p, k=k: p["persons_per_cell"][k]) for k in per[0]["persons_per_cell"]}
                                     if per[0]["persons_per_cell"] else None)}
    return out

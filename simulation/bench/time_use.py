"""`ppml bench time_use`: the time-use targets of issue 20 (docs/time_use.md), over seeds, on the
default data and model (experiments/baseline.toml; each seed a new population, split and training
run). Seeds start at 1: seed 0's population is where the estimator's variance smoothing was chosen.

- Replications (simulation/inference/replicate.py): with each seed's released model fixed, the
  samples are drawn again `replications` times from a simulated population 8x the diary persons,
  whose minutes are the truth. Per row type (overall, each breakdown, pooled): the default
  estimate's (PPI++ without DP) mean absolute error against the diary sample alone's (target: at
  most 0.7x) and classify-and-count's (at most 0.5x), the best ratio this model allows, and how
  often the 95 % intervals hold the population's truth (target 93-97 %).
- The error added by a person-level DP release at epsilon 1 (target: at most 2 minutes per cell),
  on the run's own sample, measured for ACC against ACC, the estimator the DP release uses (the
  DP release of PPI++ is not built yet).
Estimates use reproducible noise and replications a seeded generator, so a bench repeats.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import load_config
from ..experiment import run_experiment
from ..inference.estimate import estimate_run
from ..inference.replicate import replication_study

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
TARGETS = {"ratio_to_diary": 0.7, "ratio_to_classify_count": 0.5, "coverage": (0.93, 0.97), "dp_growth_minutes": 2.0}
POPULATION_SCALE = 8.0


def _single(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text())["time_use"]
    return {"mae": s["mae_minutes"], "mae_cc": s["mae_minutes_classify_count"], "release_epsilon": s["release_epsilon"]}


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
            rep = ["randomness='reproducible'"]
            default = estimate_run(run, rep, Path(tmp) / f"e{seed}", quiet=True)
            progress(f"  seed {seed}: trained; {replications} replications of the samples")
            r = {"seed": seed, "replicated": replication_study(run, default, replications, POPULATION_SCALE, progress),
                 "acc": _single(estimate_run(run, [*rep, "inference.estimator='acc'"], Path(tmp) / f"a{seed}", quiet=True)),
                 "eps1": _single(estimate_run(run, [*rep, "inference.epsilon=1.0"], Path(tmp) / f"d{seed}", quiet=True))}
            out["runs"].append(r)
            rows = r["replicated"]["row_types"]
            progress(f"  seed {seed}: " + "; ".join(
                f"{name} {rows[name]['mae_minutes']['default']:.1f} min (diary {rows[name]['mae_minutes']['diary']:.1f}, "
                f"CC {rows[name]['mae_minutes']['cc']:.1f}), coverage {rows[name]['coverage']:.1%}"
                for name in ("overall", "breakdowns", "pooled")) + f"; epsilon 1 ACC {r['eps1']['mae']:.1f} vs {r['acc']['mae']:.1f}")
    out["row_types"] = _row_types(out["runs"])
    mean = lambda key, sub: float(np.mean([r[sub][key] for r in out["runs"]]))  # noqa: E731
    out["dp_growth_minutes"] = mean("mae", "eps1") - mean("mae", "acc")  # ACC with and without the release
    out["dp_growth_minutes_classify_count"] = mean("mae_cc", "eps1") - mean("mae_cc", "acc")
    out["targets"] = TARGETS
    out["meets_target"] = {**{f"{name}:{k}": v for name, t in out["row_types"].items() for k, v in t["meets_target"].items()},
                           "dp_growth": out["dp_growth_minutes"] <= TARGETS["dp_growth_minutes"]}
    return out

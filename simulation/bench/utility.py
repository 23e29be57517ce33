"""`ppml bench utility`: what privacy costs in accuracy on the default data, each shipped recipe at
its own number of rounds (or all at --rounds N): non-private FedAvg, record-level epsilon 8 and person-level epsilon 8 in the federation scope, each from its
shipped config (experiments/), and the pooled-data person-level DP ceiling (the person config on the
centralized engine: one curator, DP-SGD over all persons at the same epsilon and delta), side by
side in one run. Drops are in macro-F1 points on the held-out persons (non-private minus private,
x100); the person run's gap to the ceiling is what federation costs beyond privacy."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..config import load_config
from ..experiment import run_experiment
from ..results.metrics import read_metrics

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
RUNS = {"non_private": ("baseline.toml", []), "record_eps8": ("dp_record.toml", []),
        "person_eps8": ("dp_person_federation.toml", []),
        # the curator's DP-SGD recipe (batch, lr, passes) chosen on validation (tune_pooled_ceiling.toml)
        "person_eps8_pooled_ceiling": ("dp_person_federation.toml", ["engine.name='centralized'",
                                                                     "federation.rounds=100"])}
TARGET_DROP = {"record": 3.0, "person": 5.0}
TARGET_GAP_TO_CEILING = 2.0


def bench_utility(rounds: int | None = None, progress: Callable[[str], None] = print) -> dict:
    """rounds=None: every run at its config's rounds (the recipes as shipped)."""
    out: dict = {"benchmark": "utility", "rounds": rounds or "each config's own"}
    with tempfile.TemporaryDirectory() as tmp:
        for key, (file, sets) in RUNS.items():
            forced = [f"federation.rounds={rounds}"] if rounds else []
            cfg = load_config(EXPERIMENTS / file, [*sets, *forced, f"output.dir='{tmp}'"])
            run_dir = run_experiment(cfg, Path(tmp) / key, quiet=True)
            s = json.loads((run_dir / "summary.json").read_text())
            rows = read_metrics(run_dir / "metrics.jsonl").rows
            out[key] = {"config": file, "rounds": cfg.federation.rounds, "macro_f1": s["final"]["macro_f1"], "accuracy": s["final"]["accuracy"],
                        "validation_macro_f1": s["final"].get("validation_macro_f1"),
                        "epsilon": s["privacy"].get("epsilon"), "wall_s": s["timing"]["wall_s"],
                        "round_s_first_last": [rows[1]["round_s"], rows[-1]["round_s"]] if len(rows) > 1 else None}
            if s["privacy"].get("scope") == "federation":
                out[key]["nso_share_epsilon"] = s["privacy"]["nso_share_epsilon"]
            progress(f"  {key} ({file}): macro-F1 {out[key]['macro_f1']:.3f}, accuracy {out[key]['accuracy']:.3f}"
                     + (f", epsilon {out[key]['epsilon']:.2f}" if out[key]["epsilon"] else "")
                     + f" ({cfg.federation.rounds} rounds, {out[key]['wall_s']:.0f} s)")
    base = out["non_private"]["macro_f1"]
    out["drop_record_points"] = round(100 * (base - out["record_eps8"]["macro_f1"]), 2)
    out["drop_person_points"] = round(100 * (base - out["person_eps8"]["macro_f1"]), 2)
    out["drop_person_ceiling_points"] = round(100 * (base - out["person_eps8_pooled_ceiling"]["macro_f1"]), 2)
    out["gap_person_to_ceiling_points"] = round(out["drop_person_points"] - out["drop_person_ceiling_points"], 2)
    out["targets"] = {"drop_record_points": TARGET_DROP["record"], "drop_person_points": TARGET_DROP["person"],
                      "gap_person_to_ceiling_points": TARGET_GAP_TO_CEILING}
    out["meets_target"] = {"record": out["drop_record_points"] <= TARGET_DROP["record"],
                           "person": out["drop_person_points"] <= TARGET_DROP["person"],
                           # a "ceiling" below the federation is an untuned curator, not a met target
                           "person_ceiling": 0 <= out["gap_person_to_ceiling_points"] <= TARGET_GAP_TO_CEILING}
    return out

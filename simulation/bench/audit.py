"""`ppml bench audit`: the audit's targets (docs/privacy.md, "Audit"), on the default data:

- a non-private run with 1,000 canaries yields an empirical lower bound clearly above 1;
- runs at epsilon 1 (record level in each NSO, person level across the federation) never yield a
  lower bound above their reported epsilon, over seeds;
- auditing costs at most 1.3x an ordinary run of the same config, measured side by side.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..config import load_config
from ..experiment import run_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
TARGETS = {"non_private_lower_bound_above": 1.0, "cost_ratio": 1.3}
DP_RUNS = {"record_eps1": ("dp_record.toml", ["privacy.target_epsilon=1.0"]),
           "person_federation_eps1": ("dp_person_federation.toml", ["privacy.target_epsilon=1.0"])}


def _run(tmp: str, name: str, file: str, sets: list[str]) -> tuple[dict, float]:
    cfg = load_config(EXPERIMENTS / file, [*sets, f"output.dir='{tmp}'"])
    start = time.perf_counter()
    run = run_experiment(cfg, Path(tmp) / name, quiet=True)
    return json.loads((run / "summary.json").read_text()), time.perf_counter() - start


def bench_audit(seeds: int = 2, rounds: int = 30, progress: Callable[[str], None] = print) -> dict:
    out: dict = {"benchmark": "audit", "seeds": seeds, "rounds": rounds, "dp_runs": []}
    r = [f"federation.rounds={rounds}"]
    with tempfile.TemporaryDirectory() as tmp:
        _, plain_s = _run(tmp, "plain", "baseline.toml", r)
        s, audit_s = _run(tmp, "audited", "baseline.toml", [*r, "audit.enabled=true", "audit.canaries=1000"])
        out["non_private"] = {k: s["audit"][k] for k in ("epsilon_lower_bound", "correct", "guesses", "mia_auc",
                                                          "mia_tpr_at_1pct_fpr", "canary_auc")}
        out["cost"] = {"ordinary_s": round(plain_s, 1), "audited_s": round(audit_s, 1), "ratio": audit_s / plain_s}
        progress(f"  non-private, 1,000 canaries: lower bound {out['non_private']['epsilon_lower_bound']:.2f} "
                 f"({s['audit']['correct']}/{s['audit']['guesses']} right), MIA AUC {s['audit']['mia_auc']:.3f}; "
                 f"{audit_s:.0f} s audited vs {plain_s:.0f} s ordinary")
        for seed in range(seeds):
            for name, (file, sets) in DP_RUNS.items():
                s, _ = _run(tmp, f"{name}-{seed}", file, [*r, *sets, f"seed={seed}", f"data.generate.seed={seed}",
                                                          "audit.enabled=true", "audit.canaries=1000"])
                a = s["audit"]
                out["dp_runs"].append({"run": name, "seed": seed, "reported_epsilon": a["reported_epsilon"],
                                       "epsilon_lower_bound": a["epsilon_lower_bound"], "mia_auc": a["mia_auc"],
                                       "correct": a["correct"], "guesses": a["guesses"]})
                progress(f"  {name} seed {seed}: reported {a['reported_epsilon']:.2f}, lower bound "
                         f"{a['epsilon_lower_bound']:.2f} ({a['correct']}/{a['guesses']}), MIA AUC {a['mia_auc']:.3f}")
    out["targets"] = TARGETS
    out["meets_target"] = {
        "non_private_detected": out["non_private"]["epsilon_lower_bound"] > TARGETS["non_private_lower_bound_above"],
        "dp_never_above_reported": all(d["epsilon_lower_bound"] <= d["reported_epsilon"] for d in out["dp_runs"]),
        "cost": out["cost"]["ratio"] <= TARGETS["cost_ratio"]}
    return out

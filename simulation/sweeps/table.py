"""results.csv: one row per finished point, rewritten whole and atomically after every point."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from datasets.atomic import atomic_write

from .plan import Point


AUDIT_COLUMNS = ("epsilon_lower_bound", "mia_auc", "mia_tpr_at_1pct_fpr", "correct", "guesses")
TIME_USE_COLUMNS = ("mae_minutes", "mae_minutes_classify_count", "ci_coverage", "release_epsilon")


def is_done(run_dir: Path) -> bool:
    return (run_dir / "summary.json").exists()


def results_table(sweep_dir: Path, points: list[Point]) -> pd.DataFrame:
    rows = []
    for p in points:
        run = sweep_dir / "points" / p.id
        if not is_done(run):
            continue
        s = json.loads((run / "summary.json").read_text())
        if s.get("kind") == "coverage":
            rows.append({"point": p.id, "role": p.role, "seed": p.seed, **{f"grid.{k}": v for k, v in p.values.items()},
                         **{f"coverage.{k}": v for k, v in s["coverage"].items() if not isinstance(v, dict)}})
            continue
        f, priv, sa = s["final"], s.get("privacy", {}), s.get("secure_aggregation", {})
        row = {"point": p.id, "role": p.role, "seed": p.seed, **{f"grid.{k}": v for k, v in p.values.items()},
               "accuracy": f["accuracy"], "macro_f1": f["macro_f1"], "wellbeing_mae": f["wellbeing_mae"],
               "federated_accuracy": f.get("federated_accuracy"),
               "validation_macro_f1": f.get("validation_macro_f1"),
               "epsilon": priv.get("epsilon") if priv.get("enabled") else float("inf"),
               "nso_share_epsilon": priv.get("nso_share_epsilon", float("nan")),
               "delta": priv.get("delta"), "privacy_unit": priv.get("unit") if priv.get("enabled") else "none",
               "privacy_scope": priv.get("scope", "nso") if priv.get("enabled") else "none",
               "secure_aggregation": bool(sa.get("enabled")), "engine": s["engine"],
               "rounds_completed": s["rounds_completed"], "stopped_early": s.get("stopped_early"),
               "wall_s": s["timing"]["wall_s"], "rounds_s": s["timing"]["rounds_s"],
               "round_s": s["timing"]["rounds_s"] / max(s["rounds_completed"], 1),
               **{f"nso.{n}.accuracy": v for n, v in f["per_nso_accuracy"].items()},
               **{f"f1.{label}": v for label, v in (f.get("per_class_f1") or {}).items()},
               **{f"time_use.{k}": s["time_use"].get(k) for k in TIME_USE_COLUMNS if "time_use" in s},
               **{f"audit.{k}": s["audit"].get(k) for k in AUDIT_COLUMNS if "audit" in s}}
        rows.append({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in row.items()})
    return pd.DataFrame(rows)


def write_results(sweep_dir: Path, points: list[Point]) -> pd.DataFrame:
    table = results_table(sweep_dir, points)
    atomic_write(sweep_dir / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
    return table

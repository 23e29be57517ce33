"""`ppml bench small_data`: do the embedded defaults learn on small real tables (issue 24 item 2)?

On the two real tables that `seglearn` ships inside its wheel - the smartwatch exercises as 2-s
windows (10 persons, about 3,400 windows) and as 80 recordings of one window each (a table the size
a new user brings) - side by side over the same seeds: `ppml run` with nothing set but the data
(spread over 2 NSOs), against the hand-tuned recipe for that table, chosen on validation persons
(experiments/real_watch.toml, experiments/real_recordings_tuned.toml). Figures are held-out
accuracy, mean over seeds; the target is the defaults within 5 points of the tuned recipe. With 8
held-out persons per seed the per-seed figures swing by tens of points, hence several seeds.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from datasets.converters.seglearn_watch import convert, convert_recordings
from datasets.io import write_dataset

from ..config import load_config
from ..experiment import run_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
# table -> (converter, the tuned recipe's config file)
TABLES = {"watch": (convert, "real_watch.toml"), "recordings": (convert_recordings, "real_recordings_tuned.toml")}
TARGET_POINTS = 5.0


def _final(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    return {"accuracy": s["final"]["accuracy"], "macro_f1": s["final"]["macro_f1"], "wall_s": s["timing"]["wall_s"]}


def bench_small_data(seeds: int = 5, progress: Callable[[str], None] = print) -> dict:
    out: dict = {"benchmark": "small_data", "seeds": list(range(seeds)), "target_points": TARGET_POINTS, "tables": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for table, (converter, tuned_file) in TABLES.items():
            data = Path(tmp) / table
            write_dataset(converter(), data)
            recipes = {"defaults": (None, [f"data.path='{data}'", "data.assign_nsos=2"]),
                       "tuned": (EXPERIMENTS / tuned_file, [f"data.path='{data}'"])}
            row: dict = {"tuned_config": tuned_file}
            for recipe, (path, sets) in recipes.items():
                runs = []
                for seed in range(seeds):
                    cfg = load_config(path, [*sets, f"seed={seed}", f"name='{table}_{recipe}'", f"output.dir='{tmp}'"])
                    runs.append(_final(run_experiment(cfg, Path(tmp) / f"{table}-{recipe}-{seed}", quiet=True)))
                row[recipe] = {k: float(np.mean([r[k] for r in runs])) for k in ("accuracy", "macro_f1", "wall_s")}
                row[recipe]["accuracy_per_seed"] = [round(r["accuracy"], 3) for r in runs]
                progress(f"  {table}, {recipe}: held-out accuracy {row[recipe]['accuracy']:.3f} "
                         f"{row[recipe]['accuracy_per_seed']}, macro-F1 {row[recipe]['macro_f1']:.3f}, "
                         f"{row[recipe]['wall_s']:.1f} s a run")
            row["gap_points"] = round(100 * (row["tuned"]["accuracy"] - row["defaults"]["accuracy"]), 2)
            row["meets_target"] = row["gap_points"] <= TARGET_POINTS
            out["tables"][table] = row
    out["meets_target"] = all(r["meets_target"] for r in out["tables"].values())
    return out

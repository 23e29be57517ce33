"""`ppml bench secagg`: round time with and without SecAgg+, 10 NSOs, local engine."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from datasets.prepared import prepare

from ..config import ExperimentConfig
from ..engines.local import run_local
from ..experiment import app_run_config
from ..results.metrics import read_metrics
from .common import ten_nso_windows

SECAGG_TARGET_RATIO = 1.5


def bench_secagg(rounds: int = 3, persons_scale: float = 1.0, repeats: int = 2) -> dict:
    """Round time with and without SecAgg+, 10 NSOs (default data, DE and FR split in two), default
    model and training, local engine, interleaved runs; the best mean round time of each."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    windows = ten_nso_windows(persons_scale)
    runs: dict[str, list[float]] = {"plain": [], "secagg": []}
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = str(Path(tmp) / "data")
        prepare(windows, data_dir, 0, 0.2, 0.1)
        for rep in range(repeats):
            for mode in ("plain", "secagg"):
                cfg = ExperimentConfig.model_validate({"federation": {"rounds": rounds},
                                                       "secure_aggregation": {"enabled": mode == "secagg"}})
                out = Path(tmp) / f"{mode}-{rep}"
                run_local(app_run_config(cfg, data_dir, str(out), quiet=True), data_dir, workers=1)
                rows = [r for r in read_metrics(out / "metrics.jsonl").rows if r["round"] > 0]
                runs[mode].append(float(np.mean([r["round_s"] for r in rows])))
                if mode == "secagg":
                    for r in rows:
                        for k, v in r.items():
                            if k.startswith("secagg.stage_s."):
                                stages.setdefault(k.split(".")[-1], []).append(v)
    plain, secagg = min(runs["plain"]), min(runs["secagg"])
    return {"benchmark": "secagg", "nsos": 10, "rounds": rounds, "plain_round_s": round(plain, 4),
            "secagg_round_s": round(secagg, 4), "ratio": round(secagg / plain, 3), "target_ratio": SECAGG_TARGET_RATIO,
            "meets_target": bool(secagg / plain <= SECAGG_TARGET_RATIO),
            "secagg_stage_s": {k: round(float(np.median(v)), 4) for k, v in stages.items()}, "runs_s": runs}

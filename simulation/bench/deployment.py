"""`ppml bench deployment`: a SecAgg+ round of three NSOs under the deployment engine (SuperLink and
SuperNodes on 127.0.0.1, TLS, the persistent ClientApp runtime) against the same round under the local
engine, side by side in one run."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from ..config import load_config
from ..experiment import run_experiment
from ..results.metrics import read_metrics

TARGET_RATIO = 10.0  # issue 24
OVERRIDES = ["data.generate.nsos=['FI','NL','PL']", "data.generate.persons_scale=0.3", "secure_aggregation.enabled=true",
             "privacy.enabled=true", "privacy.noise_multiplier=1.0", "engine.local_workers=1"]


def bench_deployment(rounds: int = 3, progress=print) -> dict:
    out: dict = {"benchmark": "deployment", "nsos": 3, "rounds": rounds}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("local", "deployment"):
            cfg = load_config(None, [*OVERRIDES, f"federation.rounds={rounds}", f"engine.name='{engine}'",
                                     f"output.dir='{tmp}'"])
            run_dir = run_experiment(cfg, Path(tmp) / engine, quiet=True)
            times = [r["round_s"] for r in read_metrics(run_dir / "metrics.jsonl").rows if r["round"] >= 2]
            out[engine] = {"round_s": times, "median_round_s": round(statistics.median(times), 3)}
            progress(f"  {engine}: median round {out[engine]['median_round_s']:.2f} s (rounds 2..{rounds})")
    out["ratio"] = round(out["deployment"]["median_round_s"] / out["local"]["median_round_s"], 2)
    out["target_ratio"] = TARGET_RATIO
    out["meets_target"] = out["ratio"] <= TARGET_RATIO
    return out

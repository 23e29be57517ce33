"""`ppml bench runs`: whole runs, not steps. Each private or secure run of a shipped config against
the non-private run of the same shape (same data, model, training, rounds), side by side in one
process: wall time ratio, where the time goes (training, accounting, aggregation, evaluation), and
how round time changes from round 2 to the last round (it must not grow: accounting at constant
cost). One NSO at a time (local_workers = 1), so the shares add up. Then the shipped federation-scope
recipe (experiments/dp_person_federation.toml) alone: its median round against issue 21's 0.3 s.

Time shares come from timers wrapped around the functions that do each job (clients.nso_client's train,
dp_train, evaluate and ledger calls; the server's central evaluation and aggregation); what is left
is framework and protocol (Flower, SecAgg+ stages).
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import clients.nso_client
import server.app
import server.strategy
from clients.privacy.accounting import PrivacyLedger

from ..config import load_config
from datasets.io import fingerprint

from ..experiment import load_data, prepared_dir, run_experiment
from ..results.metrics import read_metrics

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
TARGET_RATIO = 1.3
TARGET_ROUND_GROWTH = 0.10
TARGET_FEDERATION_ROUND_S = 0.3  # issue 21: a federation-scope round of the shipped recipe, default data
FEDERATION_CONFIG = "dp_person_federation.toml"
SHAPES = {  # name -> overrides of experiments/baseline.toml
    "non_private": [],
    "record_dp": ["privacy.enabled=true", "privacy.unit='record'", "privacy.target_epsilon=8.0"],
    "person_dp": ["privacy.enabled=true", "privacy.unit='person'", "privacy.target_epsilon=8.0"],
    "secagg": ["secure_aggregation.enabled=true"],
    "record_dp_secagg": ["privacy.enabled=true", "privacy.unit='record'", "privacy.target_epsilon=8.0",
                         "secure_aggregation.enabled=true"],
}


@contextmanager
def _timers(spent: dict[str, float]):
    """Wrap the functions that train, account, aggregate and evaluate; restore them afterwards."""
    targets = [(clients.nso_client, "train", "training"), (clients.nso_client, "dp_train", "training"),
               (clients.nso_client, "clipped_update_sum", "training"), (clients.nso_client, "noisy_share", "noise"),
               (clients.nso_client, "evaluate", "evaluation"), (server.app, "evaluate", "evaluation"),
               (clients.nso_client, "calibrate", "accounting"), (PrivacyLedger, "epsilon", "accounting"),
               (PrivacyLedger, "epsilon_after", "accounting"), (PrivacyLedger, "add", "accounting"),
               (server.strategy._Strict, "aggregate_fit", "aggregation")]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]

    def timed(fn: Callable, job: str) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[job] += time.perf_counter() - start
        return wrapper

    for owner, name, job in targets:
        setattr(owner, name, timed(getattr(owner, name), job))
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def _one(tmp: str, name: str, overrides: list[str], rounds: int, config: str = "baseline.toml") -> dict:
    cfg = load_config(EXPERIMENTS / config, [*overrides, f"federation.rounds={rounds}", f"output.dir='{tmp}'",
                                              "engine.local_workers=1"])
    spent: dict[str, float] = defaultdict(float)
    start = time.perf_counter()
    with _timers(spent):
        run_dir = run_experiment(cfg, Path(tmp) / name, quiet=True)
    wall = time.perf_counter() - start
    rows = read_metrics(run_dir / "metrics.jsonl").rows
    s = json.loads((run_dir / "summary.json").read_text())
    shares = {job: round(spent[job] / wall, 3) for job in ("training", "noise", "accounting", "aggregation",
                                                            "evaluation")}
    shares["other"] = round(1 - sum(shares.values()), 3)
    second, last = rows[2]["round_s"], rows[-1]["round_s"]
    return {"wall_s": round(wall, 2), "share": shares, "round_2_s": second, "round_last_s": last,
            "round_median_s": round(float(np.median([r["round_s"] for r in rows[2:]])), 4),
            "secagg_stage_median_s": {k.rsplit(".", 1)[1]: round(float(np.median([r[k] for r in rows[2:]])), 4)
                                      for k in rows[-1] if k.startswith("secagg.stage_s.")},
            "round_growth": round(last / second - 1, 3), "macro_f1": s["final"]["macro_f1"],
            "epsilon": s["privacy"].get("epsilon")}


def _progress(progress: Callable[[str], None], name: str, r: dict, rounds: int) -> None:
    progress(f"  {name}: {r['wall_s']:.1f} s, round 2 {r['round_2_s']:.2f} s -> round {rounds} "
             f"{r['round_last_s']:.2f} s (median {r['round_median_s']:.3f} s); shares "
             + ", ".join(f"{k} {v:.0%}" for k, v in r["share"].items())
             + ("; SecAgg+ stages (median s, training inside collect_masked_vectors): "
                + ", ".join(f"{k} {v:.3f}" for k, v in r["secagg_stage_median_s"].items())
                if r["secagg_stage_median_s"] else ""))


def bench_runs(rounds: int = 30, progress: Callable[[str], None] = print) -> dict:
    out: dict = {"benchmark": "runs", "rounds": rounds, "config": "experiments/baseline.toml", "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(EXPERIMENTS / "baseline.toml", [f"output.dir='{tmp}'"])
        dataset = load_data(cfg)  # prepared once before timing, as every later run finds it
        prepared_dir(cfg, dataset, fingerprint(dataset.windows))
        for name, overrides in SHAPES.items():
            r = out["runs"][name] = _one(tmp, name, overrides, rounds)
            _progress(progress, name, r, rounds)
        fed = out["federation_round"] = _one(tmp, "person_dp_federation", [], rounds, FEDERATION_CONFIG)
        _progress(progress, f"person_dp_federation ({FEDERATION_CONFIG})", fed, rounds)
    base = out["runs"]["non_private"]["wall_s"]
    out["ratio"] = {n: round(r["wall_s"] / base, 3) for n, r in out["runs"].items() if n != "non_private"}
    out["targets"] = {"ratio": TARGET_RATIO, "round_growth": TARGET_ROUND_GROWTH,
                      "federation_round_s": TARGET_FEDERATION_ROUND_S}
    out["meets_target"] = {"federation_round_s": fed["round_median_s"] <= TARGET_FEDERATION_ROUND_S,
        "ratio": {n: v <= TARGET_RATIO for n, v in out["ratio"].items()},
        "round_growth": {n: r["round_growth"] <= TARGET_ROUND_GROWTH for n, r in out["runs"].items()}}
    return out

"""`ppml bench fl`: framework overhead of the local engine against the same computations called directly."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import torch

from clients.nso_client import round_seed
from clients.model import build_model, get_weights, set_weights
from clients.training import evaluate, train
from datasets.prepared import load_holdout, load_partition, prepare
from server.config import FederationConfig

from ..config import ExperimentConfig
from ..engines.local import default_workers, run_local
from ..experiment import app_run_config
from .common import ten_nso_windows

FL_TARGET_RATIO = 1.15
WORKERS_TARGET_RATIO = 0.65  # a run on every core against the same run on one


def _direct(parts, holdout, cfg: ExperimentConfig, rounds: int) -> tuple[float, float]:
    """The same training, averaging and evaluation as a federated run, called directly:
    (total seconds, of which training)."""
    global_model = build_model(cfg.model, cfg.seed, parts[0].n_features, len(parts[0].labels))
    local = build_model(cfg.model, cfg.seed, parts[0].n_features, len(parts[0].labels))
    train_s = 0.0
    start = time.perf_counter()

    def evaluate_on(data):
        return evaluate(global_model, data, cfg.model, parts[0].labels, parts[0].wellbeing_range)

    evaluate_on(holdout)
    for r in range(1, rounds + 1):
        weights = get_weights(global_model)
        updates = []
        for p in parts:
            set_weights(local, weights)
            t0 = time.perf_counter()
            train(local, p.train, cfg.training, cfg.model, round_seed(cfg.seed, p.nso, r))
            train_s += time.perf_counter() - t0
            updates.append((get_weights(local), len(p.train)))
        total = sum(n for _, n in updates)
        set_weights(global_model, [sum(w[i] * n for w, n in updates) / total for i in range(len(weights))])
        evaluate_on(holdout)
        for p in parts:
            evaluate_on(p.test)
    return time.perf_counter() - start, train_s


def _federated(cfg: ExperimentConfig, data_dir: str, out: Path, workers: int = 1) -> float:
    rc = app_run_config(cfg, data_dir, str(out), quiet=True)
    start = time.perf_counter()
    run_local(rc, data_dir, workers=workers)
    return time.perf_counter() - start


def bench_fl(rounds: int = 20, persons_scale: float = 0.5, repeats: int = 2) -> dict:
    """Framework overhead of the local engine: a full federated run (one NSO at a time) against the
    same computations (each NSO's training and evaluation, the central evaluation) called directly,
    side by side; and the same run with a round's NSOs on every core."""
    windows = ten_nso_windows(persons_scale)
    cfg = ExperimentConfig(federation=FederationConfig(rounds=rounds))
    logging.getLogger("flwr").setLevel(logging.WARNING)
    direct_s, train_s, fl_s, par_s = [], [], [], []
    workers = default_workers(10)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = str(Path(tmp) / "data")
        index = prepare(windows, data_dir, cfg.seed, cfg.data.test_fraction, cfg.data.holdout_fraction)
        nsos = index["nsos"]
        parts = [load_partition(data_dir, n) for n in nsos]
        holdout, _ = load_holdout(data_dir)
        torch.set_num_threads(1)
        for rep in range(repeats):  # interleaved, so machine noise hits both alike
            d, t = _direct(parts, holdout, cfg, rounds)
            direct_s.append(d)
            train_s.append(t)
            fl_s.append(_federated(cfg, data_dir, Path(tmp) / f"run{rep}"))
            par_s.append(_federated(cfg, data_dir, Path(tmp) / f"par{rep}", workers))
    best_direct, best_fl, best_train = min(direct_s), min(fl_s), min(train_s)
    return {
        "benchmark": "fl", "nsos": len(nsos), "rounds": rounds, "windows": int(len(windows)),
        "direct_compute_s": round(best_direct, 3), "of_which_training_s": round(best_train, 3),
        "local_engine_s": round(best_fl, 3),
        "overhead_ratio": round(best_fl / best_direct, 3),
        "ratio_to_training_only": round(best_fl / best_train, 3),
        "target_ratio": FL_TARGET_RATIO, "meets_target": bool(best_fl / best_direct <= FL_TARGET_RATIO),
        "workers": workers, "local_engine_workers_s": round(min(par_s), 3),
        "workers_ratio": round(min(par_s) / best_fl, 3), "workers_target_ratio": WORKERS_TARGET_RATIO,
        "meets_workers_target": bool(min(par_s) / best_fl <= WORKERS_TARGET_RATIO),
        "runs": {"direct_s": direct_s, "local_engine_s": fl_s, "local_engine_workers_s": par_s},
    }

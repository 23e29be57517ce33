"""`ppml bench ...`: the project's speed and memory targets, measured side by side in one run."""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from rich.console import Console

from datasets.errors import UserError
from datasets.generator import DEFAULT_PERSONS, GeneratorSettings, generate

DATA_TARGET_SECONDS = 10.0


def _smallest_windows() -> int:
    """Fewest windows for which every default NSO still has MIN_PERSONS persons."""
    from datasets.generator import MIN_PERSONS

    scale = max(MIN_PERSONS / n for n in DEFAULT_PERSONS.values())
    return int(GeneratorSettings(persons_scale=scale * 1.01).total_windows()) + 1


def _settings_for(windows: int) -> GeneratorSettings:
    base = GeneratorSettings()
    scale = windows / base.total_windows()
    s = GeneratorSettings(persons_scale=scale * 1.0001)
    while s.total_windows() < windows:
        s = GeneratorSettings(persons_scale=s.persons_scale * 1.001)
    return s


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_data(windows: int) -> dict:
    """Generation time on one core for `windows` windows, and bytes per window at two sizes."""
    smallest = 4 * _smallest_windows()  # the quarter-size run must still give every NSO 10 persons
    if windows < smallest:
        raise UserError(f"--windows {windows}: at least {smallest:,} are needed (the benchmark also generates a "
                        f"quarter of it, with the default NSOs at their default proportions)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    except (AttributeError, OSError):
        pass
    generate(GeneratorSettings(nsos=["FI"], persons={"FI": 10}))  # warm-up: imports and calibration caches
    results = {}
    for label, n in (("quarter", windows // 4), ("full", windows)):
        s = _settings_for(n)
        start = time.perf_counter()
        ds = generate(s)
        seconds = time.perf_counter() - start
        mem = ds.windows.memory_usage(deep=True).sum()
        results[label] = {"windows": len(ds.windows), "seconds": round(seconds, 3),
                          "windows_per_second": round(len(ds.windows) / seconds),
                          "table_bytes_per_window": round(mem / len(ds.windows), 1)}
        del ds
    full = results["full"]
    return {
        "benchmark": "data",
        "cores": 1,
        "target_seconds": DATA_TARGET_SECONDS,
        **results,
        "meets_target": bool(full["seconds"] <= DATA_TARGET_SECONDS) if windows >= 1_000_000 else None,
        "peak_rss_mb": round(_rss_mb(), 1),
        "memory_linear": bool(abs(results["quarter"]["table_bytes_per_window"] - full["table_bytes_per_window"])
        / full["table_bytes_per_window"] < 0.1),
    }


def _verdict(ok: bool | None) -> str:
    return "[green]met[/]" if ok else "[red]NOT met[/]"


def run(args: argparse.Namespace, console: Console) -> int:
    for option in ("rounds", "repeats"):
        if getattr(args, option, 1) < 1:
            raise UserError(f"--{option} {getattr(args, option)}: must be at least 1")
    if args.bench_command == "secagg":
        r = bench_secagg(args.rounds, repeats=args.repeats)
        console.print(f"10 NSOs, default model, local engine, {r['rounds']} rounds, best of {args.repeats}:")
        console.print(f"  plain round {r['plain_round_s']:.3f} s; SecAgg+ round {r['secagg_round_s']:.3f} s: "
                      f"ratio {r['ratio']:.2f} (target <= {SECAGG_TARGET_RATIO}): " + _verdict(r["meets_target"]))
        console.print("  SecAgg+ stages (median s per round, training happens inside collect_masked_vectors): "
                      + ", ".join(f"{k} {v:.3f}" for k, v in r["secagg_stage_s"].items()))
    if args.bench_command == "dp":
        r = bench_dp(args.repeats)
        e = r["epoch_s"]
        console.print(f"one epoch, NSO DE ({r['train_windows']:,} training windows, batch {r['batch_size']}, 1 thread):")
        console.print(f"  non-private {e['non_private']:.3f} s; DP-SGD record unit {e['dp_record']:.3f} s "
                      f"({r['ratio']['dp_record']:.2f}x); person unit {e['dp_person']:.3f} s ({r['ratio']['dp_person']:.2f}x)")
        console.print(f"  target <= {DP_TARGET_RATIO}x: " + _verdict(r["meets_target"]))
    if args.bench_command == "fl":
        r = bench_fl(args.rounds, repeats=args.repeats)
        console.print(f"{r['nsos']} NSOs x {r['rounds']} rounds, {r['windows']:,} windows, 1 thread:")
        console.print(f"  same computations called directly: {r['direct_compute_s']:.2f} s "
                      f"(training {r['of_which_training_s']:.2f} s, the rest evaluation and averaging)")
        console.print(f"  local engine (Flower ServerApp + ClientApps): {r['local_engine_s']:.2f} s")
        console.print(f"  overhead ratio {r['overhead_ratio']:.3f} (target <= {FL_TARGET_RATIO}): "
                      + _verdict(r["meets_target"]) + f"; against training alone {r['ratio_to_training_only']:.3f}")
    if args.bench_command == "data":
        r = bench_data(args.windows)
        f = r["full"]
        console.print(f"data generation, 1 core: {f['windows']:,} windows in {f['seconds']:.2f} s "
                      f"({f['windows_per_second']:,} windows/s); target {DATA_TARGET_SECONDS:.0f} s for 1,000,000: "
                      + (_verdict(r["meets_target"]) if r["meets_target"] is not None
                         else "not applicable below 1,000,000 windows"))
        q = r["quarter"]
        console.print(f"memory: {q['table_bytes_per_window']} bytes/window at {q['windows']:,} windows, "
                      f"{f['table_bytes_per_window']} at {f['windows']:,} "
                      f"({'linear' if r['memory_linear'] else 'NOT linear'}); peak RSS {r['peak_rss_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0


def _ten_nso_windows(persons_scale: float):
    """The 8 default NSOs with the two largest split in half by person: 10 NSOs of realistic sizes."""
    import pandas as pd

    w = generate(GeneratorSettings(persons_scale=persons_scale)).windows.copy()
    nso = w["nso"].astype(str).to_numpy().copy()
    pid = w["person_id"].astype(str).to_numpy()
    for code in ("DE", "FR"):
        sel = nso == code
        half = pd.factorize(pid[sel])[0] % 2
        nso[sel] = [f"{code}{'ab'[h]}" for h in half]
    w["nso"] = pd.Categorical(nso)
    return w


def bench_fl(rounds: int = 20, persons_scale: float = 0.5, repeats: int = 2) -> dict:
    """Framework overhead of the local engine: a full federated run against the same computations
    (each NSO's training and evaluation, the central evaluation) called directly, side by side."""
    import tempfile

    import torch

    from clients.app import round_seed
    from clients.model import ModelConfig, build_model, set_weights, get_weights
    from clients.training import TrainingConfig, evaluate, train
    from datasets.prepared import load_holdout, load_partition, prepare
    from server.config import FederationConfig

    from .engines import run_local
    from .experiment import app_run_config
    from .config import ExperimentConfig

    windows = _ten_nso_windows(persons_scale)
    cfg = ExperimentConfig(federation=FederationConfig(rounds=rounds))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = str(Path(tmp) / "data")
        index = prepare(windows, data_dir, cfg.seed, cfg.data.test_fraction, cfg.data.holdout_fraction)
        nsos = index["nsos"]
        parts = [load_partition(data_dir, n) for n in nsos]
        holdout, _ = load_holdout(data_dir)
        torch.set_num_threads(1)

        def direct() -> tuple[float, float]:
            global_model = build_model(cfg.model, cfg.seed)
            local = build_model(cfg.model, cfg.seed)
            train_s = 0.0
            start = time.perf_counter()
            evaluate(global_model, holdout, cfg.model)
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
                evaluate(global_model, holdout, cfg.model)
                for p in parts:
                    evaluate(global_model, p.test, cfg.model)
            return time.perf_counter() - start, train_s

        def federated() -> float:
            out = Path(tmp) / f"run{time.perf_counter_ns()}"
            rc = app_run_config(cfg, data_dir, str(out), quiet=True)
            start = time.perf_counter()
            run_local(rc, data_dir)
            return time.perf_counter() - start

        import logging

        logging.getLogger("flwr").setLevel(logging.WARNING)
        direct_s, train_s, fl_s = [], [], []
        for _ in range(repeats):  # interleaved, so machine noise hits both alike
            d, t = direct()
            direct_s.append(d)
            train_s.append(t)
            fl_s.append(federated())
    best_direct, best_fl, best_train = min(direct_s), min(fl_s), min(train_s)
    return {
        "benchmark": "fl", "nsos": len(nsos), "rounds": rounds, "windows": int(len(windows)),
        "direct_compute_s": round(best_direct, 3), "of_which_training_s": round(best_train, 3),
        "local_engine_s": round(best_fl, 3),
        "overhead_ratio": round(best_fl / best_direct, 3),
        "ratio_to_training_only": round(best_fl / best_train, 3),
        "target_ratio": FL_TARGET_RATIO, "meets_target": bool(best_fl / best_direct <= FL_TARGET_RATIO),
        "runs": {"direct_s": direct_s, "local_engine_s": fl_s},
    }


FL_TARGET_RATIO = 1.15


DP_TARGET_RATIO = 2.0


def bench_dp(repeats: int = 3) -> dict:
    """One epoch of local training on the largest default NSO: non-private vs DP-SGD (record and
    person unit), same model, data, batch size and thread count, interleaved; best of `repeats`."""
    import tempfile

    import torch

    from clients.model import ModelConfig, build_model
    from clients.privacy import PrivacyConfig, dp_train, sample_rate, steps_per_round
    from clients.training import TrainingConfig, train
    from datasets.prepared import load_partition, prepare

    windows = generate(GeneratorSettings(nsos=["DE"])).windows
    mcfg, tcfg = ModelConfig(), TrainingConfig()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"non_private": [], "dp_record": [], "dp_person": []}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(windows, tmp, 0, 0.2, 0.1)
        data = load_partition(tmp, "DE").train
        train(build_model(mcfg, 0), data, tcfg, mcfg, 0)  # warm-up
        for _ in range(repeats):
            model = build_model(mcfg, 0)
            start = time.perf_counter()
            train(model, data, tcfg, mcfg, 0)
            times["non_private"].append(time.perf_counter() - start)
            for unit in ("record", "person"):
                pcfg = PrivacyConfig(enabled=True, unit=unit, noise_multiplier=1.0)
                q = sample_rate(pcfg, tcfg, data)
                model = build_model(mcfg, 0)
                start = time.perf_counter()
                dp_train(model, data, tcfg, mcfg, unit, 1.0, 1.0, q, steps_per_round(q, 1), 0)
                times[f"dp_{unit}"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    ratios = {k: round(best[k] / best["non_private"], 3) for k in ("dp_record", "dp_person")}
    return {"benchmark": "dp", "nso": "DE", "train_windows": len(data), "batch_size": tcfg.batch_size,
            "epoch_s": {k: round(v, 4) for k, v in best.items()}, "ratio": ratios, "target_ratio": DP_TARGET_RATIO,
            "meets_target": bool(max(ratios.values()) <= DP_TARGET_RATIO), "runs_s": times}


SECAGG_TARGET_RATIO = 1.5


def bench_secagg(rounds: int = 3, persons_scale: float = 1.0, repeats: int = 2) -> dict:
    """Round time with and without SecAgg+, 10 NSOs (default data, DE and FR split in two), default
    model and training, local engine, interleaved runs; the best mean round time of each."""
    import json as _json
    import logging
    import tempfile

    import numpy as np

    from datasets.prepared import prepare

    from .config import ExperimentConfig
    from .engines import run_local
    from .experiment import app_run_config

    logging.getLogger("flwr").setLevel(logging.WARNING)
    windows = _ten_nso_windows(persons_scale)
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
                run_local(app_run_config(cfg, data_dir, str(out), quiet=True), data_dir)
                rows = [_json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
                rows = [r for r in rows if "event" not in r and r["round"] > 0]
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

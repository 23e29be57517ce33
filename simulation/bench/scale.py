"""`ppml bench scale`: generation, preparation and one federation-scope training round at the
default population, x4 and x16 persons per NSO, each in a fresh process: time per window and peak
memory per window must stay flat (linear cost) as the population grows."""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

SCALES = (1.0, 4.0, 16.0)
TOLERANCE = 0.25  # per-window cost may vary this much between scales and still count as linear


def _measure(scale: float, rounds: int, queue) -> None:
    import logging

    from datasets.io import fingerprint
    from datasets.prepared import prepare
    from datasets.synthetic.generator import GeneratorSettings, generate

    from ..config import load_config
    from ..engines.local import run_local
    from ..experiment import app_run_config, with_delta

    start = time.perf_counter()
    windows = generate(GeneratorSettings(persons_scale=scale)).windows
    gen_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = prepare(windows, Path(tmp) / "data", 0, 0.2, 0.1)
        prep_s = time.perf_counter() - start
        n = len(windows)
        fingerprint(windows)
        del windows
        cfg = load_config(Path(__file__).resolve().parents[2] / "experiments" / "dp_person_federation.toml",
                          [f"federation.rounds={rounds}", "privacy.target_epsilon=8.0"])
        cfg = with_delta(cfg, index)
        logging.getLogger("flwr").setLevel(logging.WARNING)
        start = time.perf_counter()
        run_local(app_run_config(cfg, str(Path(tmp) / "data"), str(Path(tmp) / "run"), quiet=True),
                  str(Path(tmp) / "data"), workers=1)
        train_s = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put({"persons_scale": scale, "windows": n, "generate_s": round(gen_s, 2), "prepare_s": round(prep_s, 2),
               "rounds_s": round(train_s, 2), "peak_rss_mb": round(rss / 2**20, 1),
               "us_per_window": {"generate": round(1e6 * gen_s / n, 3), "prepare": round(1e6 * prep_s / n, 3),
                                 "round": round(1e6 * train_s / rounds / n, 3)},
               "bytes_per_window_peak": round(rss / n, 1)})


def bench_scale(rounds: int = 1, scales: tuple[float, ...] = SCALES, progress=print) -> dict:
    ctx = multiprocessing.get_context("spawn")
    results = []
    for scale in scales:
        queue = ctx.Queue()
        proc = ctx.Process(target=_measure, args=(scale, rounds, queue))
        proc.start()
        r = queue.get()
        proc.join()
        results.append(r)
        progress(f"  x{scale:g}: {r['windows']:,} windows; generate {r['generate_s']} s, prepare {r['prepare_s']} s, "
                 f"{rounds} federation round(s) {r['rounds_s']} s; peak {r['peak_rss_mb']} MB")
    last, first = results[-1], results[0]
    growth = {k: round(last["us_per_window"][k] / first["us_per_window"][k], 3) for k in first["us_per_window"]}
    # memory: the bytes each added window costs, between consecutive scales (the fixed cost of Python,
    # torch and Flower would hide any growth in a plain per-window figure)
    marginal = [round((b["peak_rss_mb"] - a["peak_rss_mb"]) * 2**20 / (b["windows"] - a["windows"]), 1)
                for a, b in zip(results, results[1:])]
    return {"benchmark": "scale", "rounds": rounds, "runs": results, "per_window_cost_ratio_last_to_first": growth,
            "marginal_bytes_per_window": marginal,
            "linear_time": all(v <= 1 + TOLERANCE for v in growth.values()),
            "linear_memory": bool(marginal[-1] <= marginal[0] * (1 + TOLERANCE)) if len(marginal) > 1 else None,
            "tolerance": TOLERANCE}

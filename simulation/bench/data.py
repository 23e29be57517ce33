"""`ppml bench data`: generation time on one core and memory per window at two sizes."""

from __future__ import annotations

import os
import time

from datasets.dataset import MIN_PERSONS
from datasets.errors import UserError
from datasets.synthetic.generator import DEFAULT_PERSONS, GeneratorSettings, generate

from .common import rss_mb

DATA_TARGET_SECONDS = 10.0


def _smallest_windows() -> int:
    """Fewest windows for which every default NSO still has MIN_PERSONS persons."""
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
        "peak_rss_mb": round(rss_mb(), 1),
        "memory_linear": bool(abs(results["quarter"]["table_bytes_per_window"] - full["table_bytes_per_window"])
        / full["table_bytes_per_window"] < 0.1),
    }

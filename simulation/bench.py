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
    if windows < 10_000:
        raise UserError(f"--windows {windows}: at least 10,000 windows are needed for a meaningful benchmark")
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


def run(args: argparse.Namespace, console: Console) -> int:
    if args.bench_command == "data":
        r = bench_data(args.windows)
        f = r["full"]
        console.print(f"data generation, 1 core: {f['windows']:,} windows in {f['seconds']:.2f} s "
                      f"({f['windows_per_second']:,} windows/s); target {DATA_TARGET_SECONDS:.0f} s for 1,000,000: "
                      + ("[green]met[/]" if r["meets_target"] else "[red]NOT met[/]" if r["meets_target"] is False
                         else "not applicable below 1,000,000 windows"))
        q = r["quarter"]
        console.print(f"memory: {q['table_bytes_per_window']} bytes/window at {q['windows']:,} windows, "
                      f"{f['table_bytes_per_window']} at {f['windows']:,} "
                      f"({'linear' if r['memory_linear'] else 'NOT linear'}); peak RSS {r['peak_rss_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0

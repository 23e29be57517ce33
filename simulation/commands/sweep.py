"""`ppml sweep SWEEP.toml [--out DIR] [--workers N]` and `ppml report SWEEP_DIR`."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from datasets.errors import UserError


def run(args: argparse.Namespace, console: Console) -> int:
    from ..sweeps.runner import run_sweep

    from ..sweeps.executors import RayExecutor
    from ..sweeps.plan import load_sweep

    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers {args.workers}: at least 1")
    executor = None
    if args.ray is not None:
        spec, _ = load_sweep(args.sweep)  # refuse a bad sweep file before starting Ray
        executor = RayExecutor(args.ray or None, args.workers or spec.workers)
    return run_sweep(args.sweep, args.out, args.workers, console, "ppml " + " ".join(args.argv or sys.argv[1:]),
                     executor=executor)


def report(args: argparse.Namespace, console: Console) -> int:
    from ..sweeps.report import write_report

    console.print(f"report written to {write_report(args.sweep_dir)}")
    return 0

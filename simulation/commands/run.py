"""`ppml run CONFIG [--set key=value ...] [--out DIR]`."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from ..config import load_config
from ..experiment import run_experiment


def run(args: argparse.Namespace, console: Console) -> int:
    cfg = load_config(args.config, args.set)
    console.print(f"[bold]{cfg.name}[/]: engine {cfg.engine.name}, strategy {cfg.federation.strategy}, "
                  f"{cfg.federation.rounds} rounds, seed {cfg.seed}")
    run_dir = run_experiment(cfg, args.out, quiet=args.quiet)
    s = json.loads((run_dir / "summary.json").read_text())
    f = s["final"]
    wb = f"well-being MAE {f['wellbeing_mae']:.3f}; " if f.get("wellbeing_mae") is not None else ""
    console.print(f"final: accuracy {f['accuracy']:.3f}, macro-F1 {f['macro_f1']:.3f}, {wb}"
                  f"{s['timing']['wall_s']:.1f} s; run directory {run_dir}")
    return 0

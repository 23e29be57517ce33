"""`ppml estimate RUN_DIR [--set inference.KEY=VALUE ...] [--out DIR]`."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from ..inference.estimate import estimate_run


def run(args: argparse.Namespace, console: Console) -> int:
    out = estimate_run(args.run_dir, args.set, args.out, quiet=args.quiet)
    t = json.loads((out / "summary.json").read_text())["time_use"]
    eps = f"release epsilon {t['release_epsilon']:.2f}" if t["release_epsilon"] is not None else "no DP release"
    if t["mae_minutes"] is None:  # the NSOs' own sensor-only sample: no diaries to measure against
        console.print(f"time use: {t['cells']} cells estimated ({t['truth']}); {eps}; {out / 'time_use.csv'}")
        return 0
    console.print(f"time use: mean absolute error {t['mae_minutes']:.1f} min per cell corrected, "
                  f"{t['mae_minutes_classify_count']:.1f} classify-and-count; 95 % intervals hold the truth in "
                  f"{t['ci_coverage']:.0%} of {t['cells']} cells; {eps}; {out / 'time_use.csv'}")
    return 0

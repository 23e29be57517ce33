"""`ppml data generate` and `ppml data describe`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from datasets import describe
from datasets.synthetic.generator import generate
from datasets.atomic import write_json
from datasets.io import fingerprint, load_dataset, write_dataset

from ..config import ExperimentConfig, load_config
from ..results.manifest import manifest


def _generate(args: argparse.Namespace, console: Console) -> int:
    cfg: ExperimentConfig = load_config(args.config, args.set)
    settings = cfg.data.generate
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        from datasets.errors import UserError

        raise UserError(f"--out {out}: exists and is not a directory")
    console.print(f"simulating {len(settings.nsos)} NSOs, {sum(settings.persons_per_nso().values())} persons, "
                  f"{settings.total_windows():,} windows (seed {settings.seed})")
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("generating", total=len(settings.nsos))
        dataset = generate(settings, progress=lambda code: bar.update(task, advance=1, description=f"generated {code}"))
    gen_s = time.perf_counter() - start
    files = write_dataset(dataset, out, args.format)
    windows = dataset.windows
    summary = {
        "format": args.format,
        "files": [f.name for f in files],
        "settings": settings.model_dump(),
        "windows": len(windows),
        "persons": int(windows["person_id"].nunique()),
        "fingerprint": fingerprint(windows),
        "per_nso": describe.overview(windows).reset_index().to_dict(orient="records"),
        "minutes_per_day": describe.minutes_per_day(windows).round(1).to_dict(),
        "published_minutes_per_day": describe.published_minutes(settings.nsos).round(1).to_dict(),
        "generation_seconds": round(gen_s, 3),
        "manifest": manifest(),
    }
    write_json(out / "summary.json", summary)
    console.print(f"wrote {len(windows):,} windows of {summary['persons']} persons to {out}/ "
                  f"({', '.join(summary['files'])}, summary.json) in {gen_s:.1f} s; "
                  f"fingerprint {summary['fingerprint'][:12]}")
    return 0


def _describe(args: argparse.Namespace, console: Console) -> int:
    dataset = load_dataset(args.path)
    w = dataset.windows
    out = Console()
    ov = describe.overview(w)
    t = Table(title=f"{args.path}: {len(w):,} windows, {w['person_id'].nunique()} persons")
    for col in ("NSO", "persons", "person-days", "windows", "well-being mean (0-6)", "rated share", "ENMO missing"):
        t.add_column(col, justify="right")
    for nso, r in ov.iterrows():
        t.add_row(str(nso), f"{r.persons}", f"{r.days}", f"{r.windows:,}", f"{r.wellbeing_mean:.2f}",
                  f"{r.wellbeing_rated_share:.0%}", f"{r.missing_enmo_share:.1%}")
    out.print(t)

    mins = describe.minutes_per_day(w)
    pub = describe.published_minutes(list(mins.columns))
    t = Table(title="minutes per day: simulated / published (HETUS 2010, normalised to 1440)")
    t.add_column("activity")
    for nso in mins.columns:
        t.add_column(str(nso), justify="right")
    for act in mins.index:
        cells = []
        for nso in mins.columns:
            sim = mins.loc[act, nso]
            cells.append(f"{sim:.0f} / {pub.loc[act, nso]:.0f}" if nso in pub.columns else f"{sim:.0f} / -")
        t.add_row(act, *cells)
    out.print(t)

    wb = describe.wellbeing_by_activity(w)
    t = Table(title="well-being by activity (ATUS 0-6; sleep and personal care not rated)")
    t.add_column("activity")
    t.add_column("mean", justify="right")
    for act, v in wb.items():
        t.add_row(act, "-" if pd.isna(v) else f"{v:.2f}")
    out.print(t)
    return 0


def run(args: argparse.Namespace, console: Console) -> int:
    return {"generate": _generate, "describe": _describe}[args.data_command](args, console)

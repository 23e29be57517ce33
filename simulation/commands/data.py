"""`ppml data generate`, `describe`, `import` (a window table with its schema) and `convert` (a
public dataset a registry package ships)."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from datasets import describe
from datasets.converters import CONVERTERS
from datasets.errors import UserError
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
    dataset = load_dataset(args.path, args.schema)
    w, schema = dataset.windows, dataset.schema
    out = Console()
    ov = describe.overview(w, schema)
    t = Table(title=f"{args.path}: {len(w):,} windows, {w['person_id'].nunique()} persons "
                    f"(schema '{schema.name}': {len(schema.features)} features, {len(schema.labels)} labels, "
                    f"{schema.windows.seconds:g}-s windows)")
    for col in ("NSO", "persons", "person-days", "windows", "well-being mean", "rated share", "missing values"):
        t.add_column(col, justify="right")
    for nso, r in ov.iterrows():
        wb = "-" if pd.isna(r.wellbeing_mean) else f"{r.wellbeing_mean:.2f}"
        t.add_row(str(nso), f"{r.persons}", f"{r.days}", f"{r.windows:,}", wb, f"{r.wellbeing_rated_share:.0%}",
                  f"{r.missing_share:.1%}")
    out.print(t)
    _minutes_table(out, w, schema)
    if schema.wellbeing is not None:
        t = Table(title=f"well-being by {schema.label.column} ({schema.wellbeing.min:g}-{schema.wellbeing.max:g})")
        t.add_column(schema.label.column)
        t.add_column("mean", justify="right")
        for act, v in describe.wellbeing_by_activity(w, schema).items():
            t.add_row(act, "-" if pd.isna(v) else f"{v:.2f}")
        out.print(t)
    return 0


def _minutes_table(out: Console, w: pd.DataFrame, schema) -> None:
    """Simulator: minutes per day against the fact sheet; any other schema: share of windows."""
    mins = describe.minutes_per_day(w, schema)
    pub = describe.published_minutes(list(mins.columns), schema)
    shares = mins / mins.sum()
    t = Table(title="minutes per day: simulated / published (HETUS 2010, normalised to 1440)" if schema.builtin
              else f"share of windows by {schema.label.column}")
    t.add_column(schema.label.column)
    for nso in mins.columns:
        t.add_column(str(nso), justify="right")
    for act in mins.index:
        cells = []
        for nso in mins.columns:
            sim = mins.loc[act, nso]
            cells.append(f"{sim:.0f} / {pub.loc[act, nso]:.0f}" if nso in pub.columns else
                         f"{sim:.0f} / -" if schema.builtin else f"{shares.loc[act, nso]:.1%}")
        t.add_row(act, *cells)
    out.print(t)


def _write(dataset, out: Path, fmt: str, console: Console, extra: dict) -> None:
    """Write `dataset` and a summary.json beside it; say what was written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    files = write_dataset(dataset, out, fmt)
    w = dataset.windows
    summary = {"format": fmt, "files": [f.name for f in files], "schema": dataset.schema.name, "windows": len(w),
               "persons": int(w["person_id"].nunique()), **extra, "manifest": manifest()}
    write_json(out / "summary.json", summary)
    console.print(f"wrote {len(w):,} windows of {summary['persons']} persons to {out}/ ({', '.join(summary['files'])}, "
                  "summary.json)")


def _import(args: argparse.Namespace, console: Console) -> int:
    """Validate a window table against its schema, optionally spread its persons over NSOs, and
    write it as a dataset directory (the table, its schema, a summary)."""
    dataset = load_dataset(args.source, args.schema, args.nsos, args.seed, labelled=not args.sensor_only)
    _write(dataset, Path(args.out), args.format, console,
           {"source": str(args.source), "nsos": {str(k): int(v) for k, v in
                                                 dataset.windows.groupby("nso", observed=True)["person_id"].nunique().items()},
            "assigned_nsos": args.nsos, "seed": args.seed, "fingerprint": fingerprint(dataset.windows),
            "sensor_only": bool(args.sensor_only)})
    return 0


def _convert(args: argparse.Namespace, console: Console) -> int:
    """A public dataset that a registry package ships, in the window-table format with its schema."""
    if args.name not in CONVERTERS:
        raise UserError(f"unknown dataset {args.name!r}; allowed: {', '.join(CONVERTERS)}")
    if not args.window_seconds > 0:
        raise UserError(f"--window-seconds {args.window_seconds:g}: must be above 0")
    module, function = CONVERTERS[args.name].split(":")
    dataset = getattr(importlib.import_module(module), function)(window_seconds=args.window_seconds)
    _write(dataset, Path(args.out), args.format, console, {"converted_from": args.name,
                                                           "window_seconds": args.window_seconds})
    return 0


def run(args: argparse.Namespace, console: Console) -> int:
    return {"generate": _generate, "describe": _describe, "import": _import,
            "convert": _convert}[args.data_command](args, console)

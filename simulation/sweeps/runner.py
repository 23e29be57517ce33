"""`ppml sweep`: plan, lock the sweep directory, run what is not done, keep results.csv current."""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from pathlib import Path

from datasets.atomic import write_json
from datasets.errors import UserError

from .executors import LocalProcessExecutor
from .plan import load_sweep
from .table import is_done, write_results


def _prepare(path: Path | str, sweep_dir: Path, points: list, command: str):
    """Lock the sweep directory, record the plan, clear points cut off by a crash; return the lock."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = open(sweep_dir / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError(f"{sweep_dir} is in use by another running sweep") from None
    shutil.copyfile(path, sweep_dir / "sweep.toml")
    write_json(sweep_dir / "plan.json", {"sweep_file": str(Path(path).resolve()), "command": command,
                                         "points": [{"id": p.id, "role": p.role, "seed": p.seed, "values": p.values}
                                                    for p in points]})
    (sweep_dir / "points").mkdir(exist_ok=True)
    for p in points:
        if not is_done(sweep_dir / "points" / p.id):  # a point cut off by a crash is redone from scratch
            shutil.rmtree(sweep_dir / "points" / p.id, ignore_errors=True)
    write_results(sweep_dir, points)
    return lock


def _done_line(sweep_dir: Path, p, ok: bool, err: str) -> str:
    label = f"{p.role} seed={p.seed} " + " ".join(f"{k}={v}" for k, v in p.values.items())
    if not ok:
        return f"  [red]failed[/] {label}: {err}"
    s = json.loads((sweep_dir / "points" / p.id / "summary.json").read_text())
    if s.get("kind") == "coverage":
        c = s["coverage"]
        return (f"  done {label}: coverage {c['coverage']:.4f} [{c['ci_low']:.4f}, {c['ci_high']:.4f}], "
                f"true {c['true_coverage']:.4f}")
    eps = s.get("privacy", {}).get("epsilon")
    return (f"  done {label}: macro-F1 {s['final']['macro_f1']:.3f}, accuracy {s['final']['accuracy']:.3f}"
            + (f", epsilon {eps:.2f}" if eps else ""))


def run_sweep(path: Path | str, out: Path | str | None, workers: int | None, console, command: str,
              executor=None) -> int:
    """Run every point not yet done with `executor` (default: a local process pool)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    spec, points = load_sweep(path)
    sweep_dir = Path(out) if out else Path("runs") / "sweeps" / spec.name
    lock = _prepare(path, sweep_dir, points, command)
    todo = [p for p in points if not is_done(sweep_dir / "points" / p.id)]
    n_workers = min(workers or spec.workers, max(len(todo), 1))
    executor = executor or LocalProcessExecutor(n_workers)
    console.print(f"sweep {spec.name}: {len(points)} points ({len(points) - len(todo)} already done, {len(todo)} to "
                  f"run) with {n_workers} worker(s) -> {sweep_dir}")
    failed: dict[str, str] = {}
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("points", total=len(points), completed=len(points) - len(todo))
        for p, ok, err in executor.run(todo, lambda q: sweep_dir / "points" / q.id, str(sweep_dir)):
            if not ok:
                failed[p.id] = err
            bar.console.print(_done_line(sweep_dir, p, ok, err))
            write_results(sweep_dir, points)
            bar.update(task, advance=1)
    lock.close()
    console.print(f"{len(points) - len(failed)} of {len(points)} points done in {time.perf_counter() - start:.0f} s; "
                  f"results: {sweep_dir / 'results.csv'}; report: ppml report {sweep_dir}")
    if failed:
        console.print(f"[red]{len(failed)} point(s) failed[/]; rerun the same command to retry them")
        return 1
    return 0

"""Sweeps: a grid over config keys x seeds, each point an independent run with its own directory.

Sweep file (TOML):
    [sweep]
    name = "privacy_utility"
    base = "baseline.toml"          # experiment config, relative to this file
    seeds = [0, 1]
    workers = 2                     # parallel processes; results do not depend on it
    references = true               # add non-private federated and centralized runs per seed
    [sweep.set]                     # fixed overrides for every point
    "privacy.enabled" = true
    [sweep.grid]                    # every combination of these values
    "privacy.target_epsilon" = [1.0, 4.0, 16.0]
    "privacy.unit" = ["record", "person"]

Sweep directory: sweep.toml (a copy), plan.json, points/<id>/ (run directories), results.csv.
A point is done when its summary.json exists (written last, atomically); a restarted sweep skips
done points and redoes the others from scratch. Point ids hash the whole resolved config. results.csv is rewritten whole, atomically, after
every point, so it is never half-written.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datasets.errors import UserError
from datasets.io import write_json

from .config import ConfigError, ExperimentConfig, deep_merge, read_toml

REFERENCE_PREFIXES = ("privacy.", "secure_aggregation.")


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    base: str
    seeds: list[int] = Field(min_length=1)
    grid: dict[str, Any] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    workers: int = Field(2, ge=1, le=64)
    references: bool = True


@dataclass
class Point:
    id: str
    role: str  # "grid", "non_private" or "centralized"
    seed: int
    values: dict[str, Any]  # the swept keys' values of this point
    config: dict[str, Any] = field(repr=False)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in flat.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out


def _point_id(role: str, config: dict[str, Any]) -> str:
    """Hash of the point's whole resolved config: changing the base or sweep.set gives new points,
    so a resumed sweep never reuses a run made with other settings; extending a grid keeps the
    finished ones."""
    blob = json.dumps({"role": role, "config": config}, sort_keys=True, default=str)
    return f"p-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _validate(raw: dict[str, Any], where: str) -> ExperimentConfig:
    from .config import _format_validation_error

    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, where)) from None


def load_sweep(path: Path | str) -> tuple[SweepSpec, list[Point]]:
    """Read and check a sweep file and every point it makes; raise ConfigError before anything runs."""
    path = Path(path)
    raw = read_toml(path)
    if "sweep" not in raw:
        raise ConfigError(f"{path}: not a sweep file: no [sweep] table (see docs/sweeps.md)")
    extra = sorted(set(raw) - {"sweep"})
    if extra:
        raise ConfigError(f"{path}: unknown top-level key(s) {extra}; a sweep file holds only [sweep]")
    sweep_raw = dict(raw["sweep"])
    sweep_raw["grid"] = _flatten(sweep_raw.get("grid", {}))
    sweep_raw["set"] = _flatten(sweep_raw.get("set", {}))
    try:
        spec = SweepSpec.model_validate(sweep_raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid sweep"]
        for e in exc.errors():
            key = "sweep." + ".".join(map(str, e["loc"]))
            lines.append(f"  - {key}: {e['msg']} (got {e.get('input')!r})")
        raise ConfigError("\n".join(lines)) from None
    if not spec.grid:
        raise ConfigError(f"{path}: sweep.grid is empty; give at least one key with a list of values, "
                          'e.g. "privacy.target_epsilon" = [1.0, 8.0]')
    for key, values in spec.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: sweep.grid.{key} must be a non-empty list of values (got {values!r})")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise ConfigError(f"{path}: sweep.seeds has repeats: {spec.seeds}")
    base_path = (path.parent / spec.base) if not Path(spec.base).is_absolute() else Path(spec.base)
    if not base_path.exists():
        raise ConfigError(f"{path}: sweep.base = {spec.base!r}: no such config ({base_path})")
    base = read_toml(base_path)
    if "sweep" in base:
        raise ConfigError(f"{path}: sweep.base = {spec.base!r} is itself a sweep file; it must be an experiment config")
    if isinstance(base.get("data", {}).get("path"), str) and not Path(base["data"]["path"]).is_absolute():
        base["data"]["path"] = str((base_path.parent / base["data"]["path"]).resolve())
    base = deep_merge(base, _nest(spec.set))

    points: list[Point] = []
    keys = list(spec.grid)
    combos = [dict(zip(keys, c)) for c in itertools.product(*(spec.grid[k] for k in keys))]
    ref_keys = [k for k in keys if not k.startswith(REFERENCE_PREFIXES)]
    ref_combos = [dict(zip(ref_keys, c)) for c in itertools.product(*(spec.grid[k] for k in ref_keys))]
    for seed in spec.seeds:
        todo = [("grid", c, {}) for c in combos]
        if spec.references:
            off = {"privacy": {"enabled": False}, "secure_aggregation": {"enabled": False}}
            todo += [("non_private", c, off) for c in ref_combos]
            todo += [("centralized", c, deep_merge(off, {"engine": {"name": "centralized"}})) for c in ref_combos]
        for role, values, extra_set in todo:
            cfg_raw = deep_merge(deep_merge(deep_merge(base, extra_set), _nest(values)), {"seed": seed})
            where = f"{path}: point {role} seed={seed} " + " ".join(f"{k}={v!r}" for k, v in values.items())
            cfg = _validate(cfg_raw, where)
            cfg_dict = cfg.model_dump(exclude_none=True)
            cfg_dict["name"] = f"{spec.name}"
            points.append(Point(_point_id(role, cfg_dict), role, seed, values, cfg_dict))
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: the grid makes identical points (a value listed twice?)")
    return spec, points


def _die_with_parent() -> None:
    """Worker initializer: end this worker when the sweep process dies (even by SIGKILL), so a
    restarted sweep never races a leftover worker on the same point directory."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _run_point(config: dict[str, Any], run_dir: str, output_dir: str) -> tuple[bool, str]:
    from .experiment import run_experiment

    cfg = ExperimentConfig.model_validate({**config, "output": {"dir": output_dir}})
    try:
        run_experiment(cfg, run_dir, quiet=True)
        return True, ""
    except UserError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - reported per point, the sweep goes on
        return False, f"{type(exc).__name__}: {exc}"


def is_done(run_dir: Path) -> bool:
    return (run_dir / "summary.json").exists()


def results_table(sweep_dir: Path, points: list[Point]) -> pd.DataFrame:
    rows = []
    for p in points:
        run = sweep_dir / "points" / p.id
        if not is_done(run):
            continue
        s = json.loads((run / "summary.json").read_text())
        f, priv, sa = s["final"], s.get("privacy", {}), s.get("secure_aggregation", {})
        row = {"point": p.id, "role": p.role, "seed": p.seed, **{f"grid.{k}": v for k, v in p.values.items()},
               "accuracy": f["accuracy"], "macro_f1": f["macro_f1"], "wellbeing_mae": f["wellbeing_mae"],
               "federated_accuracy": f.get("federated_accuracy"),
               "epsilon": priv.get("epsilon") if priv.get("enabled") else float("inf"),
               "delta": priv.get("delta"), "privacy_unit": priv.get("unit") if priv.get("enabled") else "none",
               "secure_aggregation": bool(sa.get("enabled")), "engine": s["engine"],
               "rounds_completed": s["rounds_completed"], "stopped_early": s.get("stopped_early"),
               "wall_s": s["timing"]["wall_s"], "rounds_s": s["timing"]["rounds_s"],
               "round_s": s["timing"]["rounds_s"] / max(s["rounds_completed"], 1),
               **{f"nso.{n}.accuracy": v for n, v in f["per_nso_accuracy"].items()}}
        rows.append({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in row.items()})
    return pd.DataFrame(rows)


def write_results(sweep_dir: Path, points: list[Point]) -> pd.DataFrame:
    table = results_table(sweep_dir, points)
    tmp = sweep_dir / f".results.{os.getpid()}.tmp"
    table.to_csv(tmp, index=False)
    tmp.replace(sweep_dir / "results.csv")
    return table


def run_sweep(path: Path | str, out: Path | str | None, workers: int | None, console, command: str) -> int:
    spec, points = load_sweep(path)
    sweep_dir = Path(out) if out else Path("runs") / "sweeps" / spec.name
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
    for p in points:
        (sweep_dir / "points" / p.id).parent.mkdir(parents=True, exist_ok=True)
    done = [p for p in points if is_done(sweep_dir / "points" / p.id)]
    todo = [p for p in points if p not in done]
    for p in todo:  # a point cut off by a crash is redone from scratch
        shutil.rmtree(sweep_dir / "points" / p.id, ignore_errors=True)
    write_results(sweep_dir, points)
    n_workers = min(workers or spec.workers, max(len(todo), 1))
    console.print(f"sweep {spec.name}: {len(points)} points ({len(done)} already done, {len(todo)} to run) "
                  f"with {n_workers} worker(s) -> {sweep_dir}")
    failed: dict[str, str] = {}
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("points", total=len(points), completed=len(done))
        output_dir = str(sweep_dir)
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn"),
                                 initializer=_die_with_parent) as pool:
            running = {pool.submit(_run_point, p.config, str(sweep_dir / "points" / p.id), output_dir): p
                       for p in todo}
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    p = running.pop(fut)
                    ok, err = fut.result()
                    label = f"{p.role} seed={p.seed} " + " ".join(f"{k}={v}" for k, v in p.values.items())
                    if ok:
                        s = json.loads((sweep_dir / "points" / p.id / "summary.json").read_text())
                        eps = s.get("privacy", {}).get("epsilon")
                        bar.console.print(f"  done {label}: macro-F1 {s['final']['macro_f1']:.3f}, accuracy "
                                          f"{s['final']['accuracy']:.3f}" + (f", epsilon {eps:.2f}" if eps else ""))
                    else:
                        failed[p.id] = err
                        bar.console.print(f"  [red]failed[/] {label}: {err}")
                    write_results(sweep_dir, points)
                    bar.update(task, advance=1)
    console.print(f"{len(points) - len(failed)} of {len(points)} points done in {time.perf_counter() - start:.0f} s; "
                  f"results: {sweep_dir / 'results.csv'}; report: ppml report {sweep_dir}")
    if failed:
        console.print(f"[red]{len(failed)} point(s) failed[/]; rerun the same command to retry them")
        return 1
    return 0

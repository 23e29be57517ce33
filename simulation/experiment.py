"""Run one experiment end to end and write its run directory.

run directory:
  config.toml      the resolved config (every default filled in): re-run it to reproduce
  manifest.json    versions, git commit, seed, data fingerprint, engine, machine
  metrics.jsonl    one line per round, appended as the round ends (survives a crash)
  metrics.csv      the same rows as a table, written at the end
  summary.json     final metrics and timing (schema: docs/results.md)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from clients.run_config import flatten
from datasets.errors import UserError
from datasets.generator import generate
from datasets.io import fingerprint, load_windows, write_json
from datasets.prepared import prepare, read_index
from datasets.schema import ACTIVITIES

from .config import ExperimentConfig
from .engines import run_centralized, run_local, run_ray
from .manifest import manifest


class RunFailed(UserError):
    """The federated run did not complete; the message says which round and why."""


def app_run_config(cfg: ExperimentConfig, data_dir: str, output_dir: str, quiet: bool) -> dict[str, Any]:
    """The flat scalar run config the Flower apps read (the same keys `flwr run .` uses)."""
    return {"seed": cfg.seed, "data-dir": data_dir, "output-dir": output_dir, "quiet": quiet,
            **flatten("model", cfg.model), **flatten("training", cfg.training), **flatten("federation", cfg.federation)}


def load_data(cfg: ExperimentConfig) -> pd.DataFrame:
    return load_windows(cfg.data.path) if cfg.data.path else generate(cfg.data.generate).windows


def prepared_dir(cfg: ExperimentConfig, windows: pd.DataFrame, fp: str) -> str:
    """Encoded per-NSO partitions, shared by every run on the same data and split."""
    key = f"{fp[:16]}-s{cfg.seed}-t{cfg.data.test_fraction}-h{cfg.data.holdout_fraction}"
    out = Path(cfg.output.dir) / ".prepared" / key
    if not (out / "index.json").exists():
        prepare(windows, out, cfg.seed, cfg.data.test_fraction, cfg.data.holdout_fraction)
    return str(out)


def default_run_dir(cfg: ExperimentConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output.dir) / f"{cfg.name}-{stamp}-seed{cfg.seed}"
    out, k = base, 1
    while out.exists():
        out, k = Path(f"{base}-{k}"), k + 1
    return out


def summarise(rows: list[dict[str, Any]], nsos: list[str], wall_s: float) -> dict[str, Any]:
    if not rows:
        raise RunFailed("the run recorded no rounds")
    last = rows[-1]
    return {
        "rounds_completed": int(last["round"]),
        "final": {
            "accuracy": last.get("central.accuracy"),
            "macro_f1": last.get("central.macro_f1"),
            "wellbeing_mae": last.get("central.wellbeing_mae"),
            "per_class_f1": {a: last.get(f"central.f1.{a}") for a in ACTIVITIES},
            "per_nso_accuracy": {n: last.get(f"nso.{n}.accuracy") for n in nsos},
            "per_nso_macro_f1": {n: last.get(f"nso.{n}.macro_f1") for n in nsos},
            "federated_accuracy": last.get("federated.accuracy"),
        },
        "initial": {"accuracy": rows[0].get("central.accuracy"), "macro_f1": rows[0].get("central.macro_f1")},
        "timing": {"wall_s": round(wall_s, 3), "rounds_s": round(sum(r["round_s"] for r in rows[1:]), 3)},
    }


def run_experiment(cfg: ExperimentConfig, out_dir: Path | str | None = None, quiet: bool = False) -> Path:
    """Run `cfg`; return the run directory. Raises UserError subclasses for anything the user can fix."""
    start = time.perf_counter()
    logging.getLogger("flwr").setLevel(logging.WARNING)  # progress comes from the round lines
    run_dir = Path(out_dir) if out_dir else default_run_dir(cfg)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"run directory {run_dir} exists and is not empty; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(tomli_w.dumps(cfg.model_dump(exclude_none=True)))
    windows = load_data(cfg)
    fp = fingerprint(windows)
    data_dir = prepared_dir(cfg, windows, fp)
    index = read_index(data_dir)
    write_json(run_dir / "manifest.json", manifest(seed=cfg.seed, engine=cfg.engine.name, data_fingerprint=fp,
                                                    data_source=cfg.data.path or "generated", data_dir=data_dir,
                                                    nsos=index["nsos"], windows=index["windows"]))
    rc = app_run_config(cfg, data_dir, str(run_dir), quiet)
    try:
        if cfg.engine.name == "local":
            run_local(rc, data_dir)
        elif cfg.engine.name == "ray":
            run_ray(rc, data_dir, cfg.engine.ray_num_cpus)
        else:
            run_centralized(rc, data_dir, cfg.seed, cfg.model, cfg.training, cfg.federation, str(run_dir), quiet)
    except UserError:
        raise
    except Exception as exc:  # a failed round or NSO: say so, with the reason, and keep what was written
        raise RunFailed(f"run failed ({type(exc).__name__}): {exc}; rounds finished so far are in "
                        f"{run_dir / 'metrics.jsonl'}") from exc
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if len(rows) != cfg.federation.rounds + 1:
        raise RunFailed(f"the run finished {len(rows) - 1} of {cfg.federation.rounds} rounds; see {run_dir}")
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    summary = {"name": cfg.name, "engine": cfg.engine.name, "seed": cfg.seed, "data_fingerprint": fp,
               **summarise(rows, index["nsos"], time.perf_counter() - start)}
    write_json(run_dir / "summary.json", summary)
    return run_dir

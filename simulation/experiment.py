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
            **flatten("model", cfg.model), **flatten("training", cfg.training), **flatten("federation", cfg.federation),
            **flatten("privacy", cfg.privacy),
            **{f"secure_aggregation.{k}": v for k, v in cfg.secure_aggregation.flat().items()}}


def resolve_delta(cfg: ExperimentConfig, index: dict) -> ExperimentConfig:
    """Fill in the default delta (0.1 / largest NSO's units) or reject one that is not below 1/n."""
    if not cfg.privacy.enabled:
        return cfg
    key = "train_persons" if cfg.privacy.unit == "person" else "train"
    n = {nso: max(int(c[key]), 1) for nso, c in index["windows"].items()}
    if cfg.privacy.delta is None:
        return cfg.model_copy(update={"privacy": cfg.privacy.model_copy(update={"delta": 0.1 / max(n.values())})})
    bad = {nso: k for nso, k in n.items() if cfg.privacy.delta >= 1.0 / k}
    if bad:
        nso, k = max(bad.items(), key=lambda kv: kv[1])
        raise UserError(f"privacy.delta = {cfg.privacy.delta:g} must be below 1/n for every NSO; NSO {nso} has "
                        f"n = {k} training {cfg.privacy.unit}s (1/n = {1 / k:g}). Allowed: delta < "
                        f"{1 / max(n.values()):g}, or leave it unset for 0.1/n = {0.1 / max(n.values()):g}")
    return cfg


def secure_aggregation_summary(cfg: ExperimentConfig, rows: list[dict[str, Any]], events: list[dict[str, Any]],
                               nsos: list[str]) -> dict[str, Any]:
    """What SecAgg+ did over the run (docs/secure_aggregation.md)."""
    if not cfg.secure_aggregation.enabled:
        return {"enabled": False}
    settings = next((e for e in events if e["event"] == "secagg_settings"), {})
    fitted = [r for r in rows if r["round"] > 0]
    return {
        "enabled": True,
        "num_shares": max((r.get("secagg.num_shares") or 0 for r in fitted), default=None),
        "threshold": max((r.get("secagg.threshold") or 0 for r in fitted), default=None),
        "rounds_completed": sum(1 for r in fitted if r.get("secagg.completed")),
        "dropped": [{"round": r["round"], "reasons": json.loads(r["secagg.dropped"])}
                    for r in fitted if r.get("secagg.dropped")],
        "clipped_values": int(sum(r.get(f"fit.{n}.secagg_clipped", 0) or 0 for r in fitted for n in nsos)),
        "quantization_error": max((r.get("secagg.quantization_error_bound", 0.0) for r in fitted), default=0.0),
        "max_weight": settings.get("max_weight"), "clipping_range": settings.get("clipping_range"),
        "quantization_range": settings.get("quantization_range"),
    }


def privacy_summary(cfg: ExperimentConfig, rows: list[dict[str, Any]], nsos: list[str]) -> dict[str, Any]:
    """Everything needed to recompute each NSO's epsilon with another accountant (docs/privacy.md)."""
    if not cfg.privacy.enabled:
        return {"enabled": False}
    history: dict[str, list[dict[str, Any]]] = {n: [] for n in nsos}
    epsilon: dict[str, float] = {}
    exhausted: dict[str, int | None] = {n: None for n in nsos}
    for row in rows:
        for n in nsos:
            steps = row.get(f"fit.{n}.steps")
            if steps is None:
                continue
            epsilon[n] = row[f"fit.{n}.epsilon"]
            if row.get(f"fit.{n}.budget_exhausted") and exhausted[n] is None:
                exhausted[n] = row["round"]
            if steps > 0:
                history[n].append({"round": row["round"], "sample_rate": row[f"fit.{n}.sample_rate"],
                                   "noise_multiplier": row[f"fit.{n}.noise_multiplier"], "steps": int(steps)})
    return {
        "enabled": True, "epsilon": max(epsilon.values()) if epsilon else 0.0, "per_nso_epsilon": epsilon,
        "delta": cfg.privacy.delta, "unit": cfg.privacy.unit, "accountant": cfg.privacy.accountant,
        "max_grad_norm": cfg.privacy.max_grad_norm, "target_epsilon": cfg.privacy.target_epsilon,
        "budget": cfg.privacy.budget, "budget_exhausted_round": exhausted, "history": history,
    }


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


def run_experiment(cfg: ExperimentConfig, out_dir: Path | str | None = None, quiet: bool = False,
                   deployment_hooks: dict | None = None) -> Path:
    """Run `cfg`; return the run directory. Raises UserError subclasses for anything the user can fix."""
    start = time.perf_counter()
    logging.getLogger("flwr").setLevel(logging.WARNING)  # progress comes from the round lines
    run_dir = Path(out_dir) if out_dir else default_run_dir(cfg)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"run directory {run_dir} exists and is not empty; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    windows = load_data(cfg)
    fp = fingerprint(windows)
    data_dir = prepared_dir(cfg, windows, fp)
    index = read_index(data_dir)
    cfg = resolve_delta(cfg, index)
    (run_dir / "config.toml").write_text(tomli_w.dumps(cfg.model_dump(exclude_none=True)))
    write_json(run_dir / "manifest.json", manifest(seed=cfg.seed, engine=cfg.engine.name, data_fingerprint=fp,
                                                    data_source=cfg.data.path or "generated", data_dir=data_dir,
                                                    nsos=index["nsos"], windows=index["windows"]))
    rc = app_run_config(cfg, data_dir, str(run_dir), quiet)
    try:
        if cfg.engine.name == "local":
            run_local(rc, data_dir)
        elif cfg.engine.name == "ray":
            run_ray(rc, data_dir, cfg.engine.ray_num_cpus)
        elif cfg.engine.name == "deployment":
            from .deployment import run_deployment

            run_deployment(rc, data_dir, run_dir, index["nsos"], quiet, hooks=deployment_hooks)
        else:
            run_centralized(rc, data_dir, cfg.seed, cfg.model, cfg.training, cfg.federation, str(run_dir), quiet)
    except UserError:
        raise
    except Exception as exc:  # a failed round or NSO: say so, with the reason, and keep what was written
        raise RunFailed(f"run failed ({type(exc).__name__}): {exc}; rounds finished so far are in "
                        f"{run_dir / 'metrics.jsonl'}") from exc
    if not (run_dir / "metrics.jsonl").exists():
        raise RunFailed(f"the ServerApp wrote no metrics (it did not start?); see {run_dir}")
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [x for x in lines if "event" not in x]
    events = [x for x in lines if "event" in x]
    stops = [x for x in events if x["event"] == "stopped"]
    failed = [x for x in events if x["event"] == "failed"]
    if failed:
        raise RunFailed(f"the ServerApp failed: {failed[0]['reason']}; rounds finished so far are in "
                        f"{run_dir / 'metrics.jsonl'}")
    if len(rows) != cfg.federation.rounds + 1 and not stops:
        raise RunFailed(f"the run finished {len(rows) - 1} of {cfg.federation.rounds} rounds; see {run_dir}")
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    summary = {"name": cfg.name, "engine": cfg.engine.name, "seed": cfg.seed, "data_fingerprint": fp,
               **summarise(rows, index["nsos"], time.perf_counter() - start),
               "stopped_early": stops[0]["reason"] if stops else None,
               "privacy": privacy_summary(cfg, rows + [{"round": x["after_round"] + 1, **x} for x in stops],
                                          index["nsos"]),
               "secure_aggregation": secure_aggregation_summary(cfg, rows, events, index["nsos"])}
    write_json(run_dir / "summary.json", summary)
    return run_dir

"""Run one experiment: config -> data -> engine -> run directory (results/run_dir.py lists its files)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from clients.model import model_for_index
from clients.privacy.accounting import resolve_delta, units_per_nso
from clients.privacy.randomness import REPRODUCIBLE_NOTE
from clients.run_config import to_run_config
from datasets.atomic import write_json
from datasets.errors import UserError
from datasets.dataset import Dataset
from datasets.io import fingerprint, load_dataset
from datasets.prepared import FORMAT_VERSION, prepare, read_index
from datasets.synthetic.generator import generate
from clients.privacy.federation_plan import plan as federation_plan

from .config import ExperimentConfig
from .engines.base import Engine, EngineRun, get_engine
from .audit.canaries import Canaries, make_canaries
from .audit.run_audit import audit_unit, per_nso_direction_canaries, run_audit
from .inference.evaluate import evaluate_release
from .inference.ledger import plan_release, record_release
from .inference.prepare import prepare_sensor_only
from .results.manifest import manifest
from .results.local_logs import with_local_logs
from .results.metrics import read_metrics
from .results.run_dir import default_run_dir, new_run_dir
from .results.summary import RunFailed, privacy_summary, secure_aggregation_summary, summarise


def app_run_config(cfg: ExperimentConfig, data_dir: str, output_dir: str, quiet: bool, inference_subdir: str = "",
                   estimate_only: str = "", direction_canaries: int = 0, release_number: int = 1) -> dict[str, Any]:
    """The flat scalar run config the Flower apps read (the same keys `flwr run .` uses)."""
    return {"seed": cfg.seed, "randomness": cfg.randomness_mode, "data-dir": data_dir, "output-dir": output_dir, "quiet": quiet,
            "inference-subdir": inference_subdir, "estimate-only": estimate_only, "release-number": release_number,
            "message-log": str(Path(output_dir) / "messages.jsonl") if cfg.output.message_log else "",
            "audit-direction-canaries": direction_canaries, "audit-seed": cfg.audit.seed,
            **to_run_config({"model": cfg.model, "training": cfg.training, "federation": cfg.federation,
                             "privacy": cfg.privacy, "secure_aggregation": cfg.secure_aggregation,
                             "inference": cfg.inference})}


def with_delta(cfg: ExperimentConfig, index: dict) -> ExperimentConfig:
    """The config with the run's one delta filled in (or an error), before anything runs. In the
    federation scope the units are the persons of all NSOs together, and the server's plan of
    noise and grid is checked here too."""
    if not cfg.privacy.enabled:
        return cfg
    if cfg.privacy.federation:
        units = {"the federation": sum(int(c["train_persons"]) for c in index["windows"].values())}
    else:
        units = units_per_nso(index, cfg.privacy.unit)
    delta = resolve_delta(cfg.privacy.delta, units, cfg.privacy.unit)
    if cfg.privacy.federation:
        dims = sum(p.numel() for p in model_for_index(cfg.model, cfg.seed, index).parameters())
        try:
            federation_plan(cfg.privacy.model_copy(update={"delta": delta}), cfg.secure_aggregation, index, dims,
                           cfg.federation.rounds)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return cfg.model_copy(update={"privacy": cfg.privacy.model_copy(update={"delta": delta})})


def randomness_summary(cfg: ExperimentConfig) -> dict[str, str]:
    """What summary.json and every report say about where the DP noise came from."""
    mode = cfg.randomness_mode
    return {"mode": mode, "note": REPRODUCIBLE_NOTE if mode == "reproducible" else
            "noise from OS entropy in each NSO: no other party can replay it; runs differ run to run"}


def load_data(cfg: ExperimentConfig) -> Dataset:
    """The imported table (validated against its schema, persons spread over NSOs if asked) or
    the simulated one."""
    if cfg.data.path:
        return load_dataset(cfg.data.path, cfg.data.schema_file, cfg.data.assign_nsos, cfg.seed)
    return generate(cfg.data.generate)


def prepared_dir(cfg: ExperimentConfig, dataset: Dataset, fp: str, canaries: Canaries | None = None) -> str:
    """Encoded per-NSO partitions, shared by every run on the same data, schema, split (and audit
    canaries, which join the training persons)."""
    key = (f"v{FORMAT_VERSION}-{fp[:16]}-{dataset.schema.fingerprint()[:8]}-s{cfg.seed}-t{cfg.data.test_fraction}"
           f"-h{cfg.data.holdout_fraction}" + (f"-a{canaries.fingerprint()[:8]}" if canaries is not None else ""))
    out = Path(cfg.output.dir) / ".prepared" / key
    if not (out / "index.json").exists():
        prepare(dataset.windows, out, cfg.seed, cfg.data.test_fraction, cfg.data.holdout_fraction, dataset.schema,
                canaries.included_windows() if canaries is not None else None)
    return str(out)


def _run_engine(engine: Engine, job: EngineRun) -> None:
    try:
        engine.run(job)
    except UserError:
        raise
    except Exception as exc:  # a failed round or NSO: say so, with the reason, and keep what was written
        raise RunFailed(f"run failed ({type(exc).__name__}): {exc}; rounds finished so far are in "
                        f"{job.run_dir / 'metrics.jsonl'}") from exc


def _check_finished(cfg: ExperimentConfig, run_dir: Path) -> None:
    if not (run_dir / "metrics.jsonl").exists():
        raise RunFailed(f"the ServerApp wrote no metrics (it did not start?); see {run_dir}")
    m = read_metrics(run_dir / "metrics.jsonl")
    failed = m.events_named("failed")
    if failed:
        raise RunFailed(f"the ServerApp failed: {failed[0]['reason']}; rounds finished so far are in "
                        f"{run_dir / 'metrics.jsonl'}")
    if len(m.rows) != cfg.federation.rounds + 1 and not m.events_named("stopped"):
        raise RunFailed(f"the run finished {len(m.rows) - 1} of {cfg.federation.rounds} rounds; see {run_dir}")


def run_experiment(cfg: ExperimentConfig, out_dir: Path | str | None = None, quiet: bool = False,
                   engine: Engine | None = None) -> Path:
    """Run `cfg` on `engine` (default: the one cfg.engine.name names); return the run directory.
    Raises UserError subclasses for anything the user can fix."""
    start = time.perf_counter()
    engine = engine or get_engine(cfg.engine.name)  # imports Flower, which sets its own log level
    logging.getLogger("flwr").setLevel(logging.WARNING)  # progress comes from the round lines
    run_dir = new_run_dir(Path(out_dir) if out_dir else default_run_dir(cfg.output.dir, cfg.name, cfg.seed))
    dataset = load_data(cfg)
    fp = fingerprint(dataset.windows)
    canaries = make_canaries(dataset.windows, dataset.schema, cfg.audit, audit_unit(
        cfg.audit, cfg.privacy.enabled, cfg.privacy.unit)) if cfg.audit.enabled else None
    data_dir = prepared_dir(cfg, dataset, fp, canaries)
    index = read_index(data_dir)
    cfg = with_delta(cfg, index)
    warned = evaluation_warnings(cfg, index)
    for w in warned:
        print(f"warning: {w}", file=sys.stderr)
    (run_dir / "config.toml").write_text(tomli_w.dumps(cfg.model_dump(exclude_none=True)))
    write_json(run_dir / "manifest.json", manifest(seed=cfg.seed, engine=cfg.engine.name, data_fingerprint=fp,
                                                    data_source=cfg.data.path or "generated", data_dir=data_dir,
                                                    nsos=index["nsos"], windows=index["windows"],
                                                    schema=index["schema"], labels=index["labels"]))
    subdir = prepare_sensor_only(cfg, dataset, data_dir) if cfg.inference.enabled else ""
    release = plan_release(cfg, Path(data_dir) / subdir, run_dir) if cfg.inference.enabled else 1
    rc = app_run_config(cfg, data_dir, str(run_dir), quiet, subdir, direction_canaries=per_nso_direction_canaries(
        cfg, len(index["nsos"])), release_number=release)
    _run_engine(engine, EngineRun(cfg, rc, data_dir, run_dir, index["nsos"], quiet))
    _check_finished(cfg, run_dir)
    summary = _summary(cfg, run_dir, index, fp, start)
    if cfg.inference.enabled:
        summary["time_use"] = evaluate_release(run_dir, Path(data_dir) / subdir)
        summary["time_use"]["ledger"] = record_release(cfg, run_dir, run_dir, summary["time_use"])
    if canaries is not None:
        summary["audit"] = run_audit(cfg, run_dir, data_dir, index, canaries, dataset.schema,
                                     summary["privacy"].get("epsilon") if cfg.privacy.enabled else None)
    summary["warnings"] = warned
    write_json(run_dir / "summary.json", summary)
    return run_dir


MIN_EVALUATION_PERSONS = 30  # below this, a held-out or test set's accuracy moves by 10+ points by chance


def evaluation_warnings(cfg: ExperimentConfig, index: dict) -> list[str]:
    """Sets that hold so few persons that their metrics are noise: how many, and what to change.
    Persons, not windows, are the units: a person's windows rise and fall together."""
    out = []
    n = index["holdout_persons"]
    if n < MIN_EVALUATION_PERSONS:
        out.append(f"the held-out set holds {n} person(s) ({index['holdout_windows']} windows): its accuracy and macro-F1 are "
                   f"uncertain by about +-{100 / max(n, 1) ** 0.5:.0f} points (95 %, persons as units); use data with "
                   "more persons or raise "
                   f"data.holdout_fraction (now {cfg.data.holdout_fraction:g}) - at least {MIN_EVALUATION_PERSONS} "
                   "persons make the figures worth reading")
    small = {nso: c["test_persons"] for nso, c in index["windows"].items() if c["test_persons"] < 10}
    if small:
        out.append(f"NSO test sets with fewer than 10 persons {small}: their per-NSO accuracy is noise; raise "
                   f"data.test_fraction (now {cfg.data.test_fraction:g}) or read only the held-out figures")
    return out


def _summary(cfg: ExperimentConfig, run_dir: Path, index: dict, fp: str, start: float) -> dict:
    """summary.json without the optional blocks; metrics.csv beside it (the server's rows and the
    NSOs' local logs together)."""
    m = read_metrics(run_dir / "metrics.jsonl")
    m.rows = with_local_logs(m.rows, run_dir, index["nsos"])  # what each simulated NSO kept to itself
    pd.DataFrame(m.rows).to_csv(run_dir / "metrics.csv", index=False)
    stops = m.events_named("stopped")
    return {"name": cfg.name, "engine": cfg.engine.name, "seed": cfg.seed, "randomness": randomness_summary(cfg),
            "data_fingerprint": fp,
            "data": {"schema": index["schema"]["name"], "labels": index["labels"], "features": len(index["features"])},
            **summarise(m.rows, index["nsos"], time.perf_counter() - start, index["labels"]),
            "stopped_early": stops[0]["reason"] if stops else None,
            "privacy": privacy_summary(cfg, m.rows + [{"round": x["after_round"] + 1, **x} for x in stops],
                                       index["nsos"], m.events),
            "secure_aggregation": secure_aggregation_summary(cfg, m.rows, m.events, index["nsos"])}

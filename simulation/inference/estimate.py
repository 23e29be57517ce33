"""`ppml estimate RUN_DIR`: time-use estimation with the model a finished run released.

The same apps and engine as the run (its config.toml), with the ServerApp told to skip training
and to start from the run's model.npz; [inference] settings can be changed with --set (a release
epsilon, a pooled confusion matrix...). The results go to a directory of their own (default
RUN_DIR/estimates/<time>), so estimates with other settings never overwrite each other; every
release goes on the model's ledger (RUN_DIR/release_ledger.json), which totals them and which
`inference.budget` caps. `randomness = "auto"` means `secure` here: a release is for publication.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import tomli_w

from datasets.atomic import write_json
from datasets.errors import UserError
from datasets.io import fingerprint
from datasets.prepared import read_index

from ..config import ExperimentConfig, load_config
from ..engines.base import EngineRun, get_engine
from ..experiment import app_run_config, load_data, prepared_dir, with_delta
from ..results.manifest import manifest
from ..results.run_dir import new_run_dir
from .evaluate import evaluate_release
from .ledger import plan_release, record_release
from .prepare import prepare_sensor_only


def estimate_run(run_dir: Path | str, overrides: list[str] | None = None, out_dir: Path | str | None = None,
                 quiet: bool = False) -> Path:
    run_dir = Path(run_dir)
    for needed in ("config.toml", "model.npz"):
        if not (run_dir / needed).exists():
            raise UserError(f"{run_dir}: no {needed}; `ppml estimate` needs the directory of a finished `ppml run`")
    cfg: ExperimentConfig = load_config(run_dir / "config.toml", ["inference.enabled=true", *(overrides or [])])
    if cfg.randomness == "auto":  # a release is for publication: noise no other party can replay
        cfg = cfg.model_copy(update={"randomness": "secure"})
    out = new_run_dir(Path(out_dir) if out_dir else run_dir / "estimates" / time.strftime("%Y%m%d-%H%M%S"))
    start = time.perf_counter()
    dataset = load_data(cfg)
    fp = fingerprint(dataset.windows)
    data_dir = prepared_dir(cfg, dataset, fp)
    index = read_index(data_dir)
    cfg = with_delta(cfg, index)
    subdir = prepare_sensor_only(cfg, dataset, data_dir)
    number = plan_release(cfg, Path(data_dir) / subdir, run_dir)  # before any work: budget and delta
    (out / "config.toml").write_text(tomli_w.dumps(cfg.model_dump(exclude_none=True)))
    rc = app_run_config(cfg, data_dir, str(out), quiet, subdir, estimate_only=str((run_dir / "model.npz").resolve()),
                        release_number=number)
    engine = get_engine(cfg.engine.name)  # imports Flower, which sets its own log level
    logging.getLogger("flwr").setLevel(logging.WARNING)
    engine.run(EngineRun(cfg, rc, data_dir, out, index["nsos"], quiet))
    block = evaluate_release(out, Path(data_dir) / subdir)
    block["ledger"] = record_release(cfg, run_dir, out, block)
    write_json(out / "summary.json", {"name": cfg.name, "model_from": str(run_dir), "data_fingerprint": fp,
                                      "time_use": block, "wall_s": round(time.perf_counter() - start, 3),
                                      "manifest": manifest(seed=cfg.seed, engine=cfg.engine.name)})
    return out

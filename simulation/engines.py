"""Engines that run the same ServerApp and ClientApp: local (default), ray, and the centralized ceiling."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from flwr.app import Context, RecordDict

from clients.app import make_client_app
from clients.model import ModelConfig, build_model
from clients.training import TrainingConfig, evaluate, train
from datasets.errors import UserError
from datasets.prepared import Arrays, load_holdout, load_partition, read_index
from server.app import make_server_app
from server.config import FederationConfig
from server.records import RoundRecorder

from .local_grid import LocalGrid

NODE_ID_BASE = 1000


def node_contexts(nsos: list[str], data_dir: str, run_config: dict[str, Any]) -> dict[int, Context]:
    """One persistent Context per NSO node (its state survives across rounds)."""
    return {
        NODE_ID_BASE + i: Context(run_id=1, node_id=NODE_ID_BASE + i,
                                  node_config={"partition-id": i, "num-partitions": len(nsos), "nso": nso,
                                               "data-dir": data_dir},
                                  state=RecordDict(), run_config=dict(run_config))
        for i, nso in enumerate(nsos)
    }


def run_local(run_config: dict[str, Any], data_dir: str, record_replies: bool = False) -> LocalGrid:
    """Run the apps on the local Grid; with record_replies the grid keeps every reply it carried
    (what the server received), for inspection."""
    nsos = read_index(data_dir)["nsos"]
    grid = LocalGrid(make_client_app(), node_contexts(nsos, data_dir, run_config), run_id=1)
    if record_replies:
        grid.received = []
    server_ctx = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=dict(run_config))
    make_server_app()(grid, server_ctx)
    return grid


def run_ray(run_config: dict[str, Any], data_dir: str, num_cpus: int) -> None:
    """Flower's Simulation Engine on a local Ray instance bound to 127.0.0.1, without dashboard."""
    from flwr.simulation import run_simulation

    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    nsos = read_index(data_dir)["nsos"]
    backend_config = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": num_cpus, "include_dashboard": False, "_node_ip_address": "127.0.0.1",
                      "logging_level": 30, "log_to_driver": True},
    }
    run_simulation(server_app=make_server_app(run_config), client_app=make_client_app(run_config),
                   num_supernodes=len(nsos), backend_config=backend_config)


def run_centralized(run_config: dict[str, Any], data_dir: str, seed: int, model_cfg: ModelConfig,
                    train_cfg: TrainingConfig, fed: FederationConfig, output_dir: str, quiet: bool) -> None:
    """The same model on the pooled training persons of all NSOs: the non-private ceiling.

    One "round" = local_epochs passes over the pooled data, so rounds compare with federated runs.
    """
    nsos = read_index(data_dir)["nsos"]
    parts = [load_partition(data_dir, n) for n in nsos]
    pooled = Arrays(*(np.concatenate([getattr(p.train, f) for p in parts]) for f in ("x", "y", "wellbeing", "person")))
    if len(pooled) == 0:
        raise UserError("no training windows in the data")
    holdout, _ = load_holdout(data_dir)
    model = build_model(model_cfg, seed)
    recorder = RoundRecorder(output_dir, fed.rounds, quiet=quiet)
    torch.set_num_threads(1)
    recorder.central(0, evaluate(model, holdout, model_cfg))
    for r in range(1, fed.rounds + 1):
        stats = train(model, pooled, train_cfg, model_cfg, seed * 100_003 + r)
        recorder.current["round"] = r
        recorder.fit([{"nso": "pooled", **stats}])
        recorder.central(r, evaluate(model, holdout, model_cfg))
        per = []
        for p in parts:
            m = evaluate(model, p.test, model_cfg)
            per.append((len(p.test), {"nso": p.nso, **m}))
        recorder.federated(per)

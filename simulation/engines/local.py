"""The `local` engine (default): the ServerApp and every NSO's ClientApp in this process, on the
in-process LocalGrid (local_grid.py), each NSO node with its own persistent Context."""

from __future__ import annotations

import os
from typing import Any

from flwr.app import Context, RecordDict

from clients.app import make_client_app
from clients.run_config import THREADS_KEY
from clients.privacy.randomness import NODE_SECRET_KEY, simulated_node_secret
from datasets.prepared import read_index
from server.app import make_server_app

from .base import EngineRun
from .local_grid import LocalGrid

NODE_ID_BASE = 1000


def node_contexts(nsos: list[str], data_dir: str, run_config: dict[str, Any], threads: int = 1) -> dict[int, Context]:
    """One persistent Context per NSO node (its state survives across rounds); `threads` for the
    per-person updates of nodes that run one after another in this process."""
    return {
        NODE_ID_BASE + i: Context(run_id=1, node_id=NODE_ID_BASE + i,
                                  node_config={"partition-id": i, "num-partitions": len(nsos), "nso": nso,
                                               "data-dir": data_dir, THREADS_KEY: threads,
                                               NODE_SECRET_KEY: simulated_node_secret(int(run_config.get("seed", 0)), nso)},
                                  state=RecordDict(), run_config=dict(run_config))
        for i, nso in enumerate(nsos)
    }


MIN_WINDOWS_FOR_WORKERS = 100_000  # below this, starting worker processes costs more than it saves


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(n_nsos: int, train_windows: int = MIN_WINDOWS_FOR_WORKERS) -> int:
    """One worker process per core, no more than NSOs; one (this process) for small data."""
    if train_windows < MIN_WINDOWS_FOR_WORKERS:
        return 1
    return max(1, min(cores(), n_nsos))


def run_local(run_config: dict[str, Any], data_dir: str, record_replies: bool = False,
              workers: int | None = None) -> LocalGrid:
    """Run the apps on the local Grid, `workers` NSOs at a time in worker processes (default: one per
    core); with record_replies the grid keeps every reply it carried (what the server received).

    Under SecAgg+ every NSO runs in this process, one after another: the SecAgg+ mod quantizes with
    numpy's global random state, whose draws must stay in one sequence for bit-identical results."""
    index = read_index(data_dir)
    nsos = index["nsos"]
    if run_config.get("secure_aggregation.enabled") in (True, "true", 1):
        workers = 1
    load = {NODE_ID_BASE + i: float(index["windows"][nso]["train"]) for i, nso in enumerate(nsos)}
    workers = workers or default_workers(len(nsos), int(sum(load.values())))
    grid = LocalGrid(make_client_app(), node_contexts(nsos, data_dir, run_config, cores() if workers == 1 else 1),
                     run_id=1, workers=workers, load=load)
    if record_replies:
        grid.received = []
    server_ctx = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=dict(run_config))
    try:
        make_server_app()(grid, server_ctx)
    finally:
        grid.close()
    return grid


class LocalEngine:
    def run(self, job: EngineRun) -> None:
        run_local(job.run_config, job.data_dir, workers=job.cfg.engine.local_workers)

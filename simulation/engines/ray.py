"""The `ray` engine: Flower's Simulation Engine on a local Ray instance bound to 127.0.0.1, without
dashboard (Ray still probes an outside address for its own IP: run it under `unshare -n`,
docs/federated.md)."""

from __future__ import annotations

import os

from clients.app import make_client_app
from server.app import make_server_app

from .base import EngineRun


class RayEngine:
    def run(self, job: EngineRun) -> None:
        from flwr.simulation import run_simulation

        os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
        backend_config = {
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": job.cfg.engine.ray_num_cpus, "include_dashboard": False,
                          "_node_ip_address": "127.0.0.1", "logging_level": 30, "log_to_driver": True},
        }
        run_simulation(server_app=make_server_app(job.run_config), client_app=make_client_app(job.run_config),
                       num_supernodes=len(job.nsos), backend_config=backend_config)

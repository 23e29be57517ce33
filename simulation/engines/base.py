"""What every engine gets and does, and the registry that maps `engine.name` to an engine.

An engine runs the same ServerApp and ClientApps (or, for the centralized ceiling, the same model
and training) and leaves metrics.jsonl and model.npz in the run directory; everything after that
(summaries, tables, reports) reads those files and does not care which engine wrote them. A new
engine is a module with a class that has `run(job)`, and one line in ENGINES.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from datasets.errors import UserError

if TYPE_CHECKING:
    from ..config import ExperimentConfig


POOLED = "pooled"  # the one "NSO" of a centralized run, in its metrics and privacy summary


@dataclass(frozen=True)
class EngineRun:
    """One experiment as an engine sees it."""

    cfg: "ExperimentConfig"  # validated, delta resolved
    run_config: dict[str, Any]  # the flat Flower run config of the apps
    data_dir: str  # prepared per-NSO partitions (datasets/prepared.py)
    run_dir: Path  # where metrics.jsonl and model.npz go
    nsos: list[str]
    quiet: bool


class Engine(Protocol):
    def run(self, job: EngineRun) -> None:
        """Run every round; raise UserError for what the user can fix, anything else for a failure."""


# name -> "module:Class", imported only when chosen (ray and the deployment tools are heavy)
ENGINES: dict[str, str] = {
    "local": "simulation.engines.local:LocalEngine",
    "ray": "simulation.engines.ray:RayEngine",
    "centralized": "simulation.engines.centralized:CentralizedEngine",
    "deployment": "simulation.engines.deployment:DeploymentEngine",
}


def get_engine(name: str) -> Engine:
    if name not in ENGINES:
        raise UserError(f"engine.name = {name!r}: unknown engine; allowed: {', '.join(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)()

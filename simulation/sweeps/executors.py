"""Where sweep points run. An executor takes the points still to do and reports each as it
finishes; the plan, the resume rule and the results table do not depend on which one ran them.

- LocalProcessExecutor (default): spawn workers on this machine; each dies with the sweep process.
- RayExecutor (`ppml sweep --ray [ADDRESS]`): each point a Ray task, on an existing cluster or a
  local Ray instance bound to 127.0.0.1. Tasks write their run directories to the sweep directory,
  which must therefore be on storage every Ray node shares (on a local instance it is).
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from datasets.errors import UserError

from ..config import ExperimentConfig
from .plan import Point

Outcome = tuple[Point, bool, str]  # the point, whether it finished, the error if not


def _die_with_parent() -> None:
    """Worker initializer: end this worker when the sweep process dies (even by SIGKILL), so a
    restarted sweep never races a leftover worker on the same point directory."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _run(config: dict[str, Any], run_dir: str, output_dir: str) -> None:
    """One point: a coverage measurement (coverage_psi/) or a federated experiment."""
    if "coverage" in config:
        from coverage_psi.config import CoverageConfig
        from coverage_psi.run import run_coverage

        run_coverage(CoverageConfig.model_validate({**config["coverage"], "output_dir": output_dir}), run_dir)
        return
    from ..experiment import run_experiment

    cfg = ExperimentConfig.model_validate({**config, "output": {"dir": output_dir}})
    if cfg.engine.local_workers is None:  # the sweep already keeps every core busy, one point each
        cfg = cfg.model_copy(update={"engine": cfg.engine.model_copy(update={"local_workers": 1})})
    run_experiment(cfg, run_dir, quiet=True)


def run_point(config: dict[str, Any], run_dir: str, output_dir: str) -> tuple[bool, str]:
    try:
        _run(config, run_dir, output_dir)
        return True, ""
    except UserError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - reported per point, the sweep goes on
        return False, f"{type(exc).__name__}: {exc}"


class LocalProcessExecutor:
    """`workers` spawn processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, points: list[Point], run_dir: Callable[[Point], Path], output_dir: str) -> Iterator[Outcome]:
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                 initializer=_die_with_parent) as pool:
            running = {pool.submit(run_point, p.config, str(run_dir(p)), output_dir): p for p in points}
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    p = running.pop(fut)
                    ok, err = fut.result()
                    yield p, ok, err


def _check_reachable(address: str) -> None:
    """Ray waits a long time for a cluster that is not there: fail at once if nothing listens."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        raise UserError(f"--ray {address}: expected HOST:PORT (or ray://HOST:PORT) of a Ray cluster's head node")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except OSError as exc:
        raise UserError(f"--ray {address}: cannot connect to a Ray cluster there ({exc})") from None


class RayExecutor:
    """Points as tasks on a Ray cluster (`address`) or, with address None, on a local instance of
    `workers` CPUs bound to 127.0.0.1 without dashboard. One CPU per task."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address, self.workers = address, workers

    def _init(self):
        try:
            import ray
        except ImportError:  # pragma: no cover - flwr[simulation] brings ray
            raise UserError("--ray needs the ray package (pip install 'flwr[simulation]')") from None
        os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
        if self.address:
            _check_reachable(self.address)
            try:
                ray.init(address=self.address, logging_level=30, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UserError(f"--ray {self.address}: cannot connect to a Ray cluster there ({exc})") from None
        else:
            ray.init(num_cpus=self.workers, include_dashboard=False, _node_ip_address="127.0.0.1",
                     logging_level=30, log_to_driver=False)
        return ray

    def run(self, points: list[Point], run_dir: Callable[[Point], Path], output_dir: str) -> Iterator[Outcome]:
        ray = self._init()
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(run_point)
            pending = {task.remote(p.config, str(run_dir(p)), output_dir): p for p in points}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    p = pending.pop(ref)
                    try:
                        ok, err = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a lost task or node: reported per point
                        ok, err = False, f"Ray task failed: {type(exc).__name__}: {exc}"
                    yield p, ok, err
        finally:
            ray.shutdown()

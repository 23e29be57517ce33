"""Where sweep points run. An executor takes the points still to do and reports each as it
finishes; the plan, the resume rule and the results table do not depend on which one ran them.

- ProcessPoolExecutor (default): spawn workers on this machine; each dies with the sweep process.
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


def run_point(config: dict[str, Any], run_dir: str, output_dir: str) -> tuple[bool, str]:
    from ..experiment import run_experiment

    cfg = ExperimentConfig.model_validate({**config, "output": {"dir": output_dir}})
    if cfg.engine.local_threads is None:  # the sweep already keeps every core busy, one point each
        cfg = cfg.model_copy(update={"engine": cfg.engine.model_copy(update={"local_threads": 1})})
    try:
        run_experiment(cfg, run_dir, quiet=True)
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

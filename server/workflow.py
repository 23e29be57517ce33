"""The round workflow around the strategy: Flower's default fit/evaluate workflows (or SecAgg+ as
the fit workflow), with reply timeouts, and the wait for every NSO node before round 1."""

from __future__ import annotations

import time

from flwr.server.workflow import DefaultWorkflow
from flwr.server.workflow.default_workflows import default_evaluate_workflow, default_fit_workflow
from flwr.serverapp import Grid

from .strategy import RoundFailed


class TimeoutGrid:
    """A Grid whose send_and_receive waits at most `timeout` seconds (Flower's default workflows
    wait forever for a node that died); replies that never come are then missing, and the strict
    strategy reports or tolerates them."""

    def __init__(self, grid: Grid, timeout: float) -> None:
        self._grid, self._timeout = grid, timeout

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        return self._grid.send_and_receive(messages, timeout=timeout if timeout is not None else self._timeout)


def wait_for_nodes(grid: Grid, expected: int, timeout_s: float) -> None:
    """Fail clearly if fewer NSO nodes than NSOs in the data connect (Flower would wait a day)."""
    deadline = time.monotonic() + timeout_s
    while True:
        n = len(list(grid.get_node_ids()))
        if n >= expected:
            return
        if time.monotonic() > deadline:
            raise RoundFailed(f"only {n} of {expected} NSO nodes connected within {timeout_s:g} s; the data hold "
                              f"{expected} NSOs and every NSO needs its own node (SuperNode)")
        time.sleep(0.2)


def round_workflow(fit_workflow=None, reply_timeout: float | None = None) -> DefaultWorkflow:
    """Flower's DefaultWorkflow with `fit_workflow` (SecAgg+) or the default fit, and evaluation
    (and default fit) replies awaited at most `reply_timeout` seconds when given."""
    fit = fit_workflow or default_fit_workflow
    evaluate_wf = default_evaluate_workflow
    if reply_timeout is not None:
        if fit_workflow is None:
            def fit(g, c):
                return default_fit_workflow(TimeoutGrid(g, reply_timeout), c)

        def evaluate_wf(g, c):
            return default_evaluate_workflow(TimeoutGrid(g, reply_timeout), c)
    return DefaultWorkflow(fit_workflow=fit, evaluate_workflow=evaluate_wf)

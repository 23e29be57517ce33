"""The round workflow around the strategy: Flower's default fit/evaluate workflows (or SecAgg+ as
the fit workflow), with reply timeouts, and the wait for every NSO node before round 1."""

from __future__ import annotations

import time

from flwr.server.workflow import DefaultWorkflow
from flwr.server.workflow.default_workflows import default_evaluate_workflow, default_fit_workflow
from flwr.serverapp import Grid

from .strategy import RoundFailed


POLL_S = 0.05  # how often replies are pulled; Flower's deployment grid sleeps 3 s between pulls


class PollingGrid:
    """A Grid whose send_and_receive pulls replies every POLL_S seconds instead of Flower's 3 s
    (flwr 1.41's deployment grid hard-codes it; its public push/pull calls let us choose), and waits
    at most `timeout` seconds when one is given (Flower's default workflows wait forever for a node
    that died); replies that never come are then missing, and the strict strategy reports or
    tolerates them. Replies come back in the order of the messages, so that sums over them are
    taken in one order and runs stay bit-identical."""

    def __init__(self, grid: Grid, timeout: float | None = None) -> None:
        self._grid, self._timeout = grid, timeout

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        timeout = timeout if timeout is not None else self._timeout
        order = list(self._grid.push_messages(messages))
        waiting = list(order)  # a list, not a set: pulls in push order, whatever the hash seed
        end = time.monotonic() + (timeout or 0.0)
        replies = []
        while waiting:
            pulled = list(self._grid.pull_messages(waiting))
            replies.extend(pulled)
            answered = {m.metadata.reply_to_message_id for m in pulled}
            waiting = [m for m in waiting if m not in answered]
            if not waiting or (timeout is not None and time.monotonic() >= end):
                break
            time.sleep(POLL_S)
        rank = {m: i for i, m in enumerate(order)}  # replies in message order: aggregation sums in one order
        return sorted(replies, key=lambda r: rank.get(r.metadata.reply_to_message_id, len(rank)))


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
    """Flower's DefaultWorkflow with `fit_workflow` (SecAgg+) or the default fit, every exchange
    polled every POLL_S seconds, and evaluation (and default fit) replies awaited at most
    `reply_timeout` seconds when given (SecAgg+ sets its own timeouts per stage)."""
    def fit(g, c):
        return (fit_workflow or default_fit_workflow)(PollingGrid(g, None if fit_workflow else reply_timeout), c)

    def evaluate_wf(g, c):
        return default_evaluate_workflow(PollingGrid(g, reply_timeout), c)

    return DefaultWorkflow(fit_workflow=fit, evaluate_workflow=evaluate_wf)

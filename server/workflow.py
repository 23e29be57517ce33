"""The round workflow around the strategy: Flower's default fit/evaluate workflows (or SecAgg+ as
the fit workflow), with reply timeouts, and the wait for every NSO node before round 1."""

from __future__ import annotations

import threading
import time

from flwr.server.workflow import DefaultWorkflow
from flwr.server.workflow.default_workflows import default_evaluate_workflow, default_fit_workflow
from flwr.serverapp import Grid
from flwr.superlink.grid import http_grid
from flwr.superlink.grid.http_grid import HttpGrid

from clients.object_retry import retry_objects_sooner

from .strategy import RoundFailed


POLL_S = 0.05  # how often replies are pulled; Flower's deployment grid sleeps 3 s between pulls
MAX_POLL_S = 0.25  # per-message pulls (over a SuperLink) back off to this, so 8 NSOs cost it 32 requests/s
def _pulls_from_superlink(grid) -> bool:
    """Whether replies come from a SuperLink, uploaded object by object by SuperNodes (which can die
    mid-upload); wrappers such as the message log hold the grid they wrap as `inner`."""
    while grid is not None:
        if isinstance(grid, HttpGrid):
            return True
        grid = getattr(grid, "inner", getattr(grid, "_grid", None))
    return False


class PollingGrid:
    """A Grid whose send_and_receive pulls replies every POLL_S seconds instead of Flower's 3 s
    (flwr 1.41's deployment grid hard-codes it; its public push/pull calls let us choose), and waits
    at most `timeout` seconds when one is given (Flower's default workflows wait forever for a node
    that died); replies that never come are then missing, and the strict strategy reports or
    tolerates them. Replies come back in the order of the messages, so that sums over them are
    taken in one order and runs stay bit-identical.

    Over a SuperLink each message's reply is pulled on its own thread. Flower's pull marks every
    reply it lists as delivered and then downloads their objects one reply after another, retrying
    a missing object until the SuperNode's upload session expires (180 s): a SuperNode killed while
    uploading its reply would hold the whole batch that long and every other NSO's reply in it
    would be lost, failing the round (seen in CI). Pulled one by one, such a reply is only missing
    when the stage's timeout ends, as any dropout's."""

    def __init__(self, grid: Grid, timeout: float | None = None, pull_each: bool | None = None) -> None:
        """`pull_each`: one thread per reply; by default when the grid pulls from a SuperLink."""
        self._grid, self._timeout = grid, timeout
        remote = _pulls_from_superlink(grid)
        self._pull_each_reply = remote if pull_each is None else pull_each
        if remote:  # a reply's objects are uploaded after it is announced: ask again soon
            retry_objects_sooner(http_grid, "pull_objects")

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        timeout = timeout if timeout is not None else self._timeout
        order = list(self._grid.push_messages(messages))
        end = None if timeout is None else time.monotonic() + timeout
        pull = self._pull_each if self._pull_each_reply else self._pull_together
        replies = pull(order, end)
        rank = {m: i for i, m in enumerate(order)}  # replies in message order: aggregation sums in one order
        return sorted(replies, key=lambda r: rank.get(r.metadata.reply_to_message_id, len(rank)))

    def _pull_together(self, order: list[str], end: float | None) -> list:
        waiting = list(order)  # a list, not a set: pulls in push order, whatever the hash seed
        replies = []
        while waiting:
            pulled = list(self._grid.pull_messages(waiting))
            replies.extend(pulled)
            answered = {m.metadata.reply_to_message_id for m in pulled}
            waiting = [m for m in waiting if m not in answered]
            if not waiting or (end is not None and time.monotonic() >= end):
                break
            time.sleep(POLL_S)
        return replies

    def _pull_each(self, order: list[str], end: float | None) -> list:
        order = [m for m in order if m]  # Flower lists a message it could not push as None: no reply comes
        got: dict[str, list] = {}
        lock, all_in = threading.Lock(), threading.Event()
        state: dict = {"open": True, "left": len(order), "error": None}

        def pull(message_id: str) -> None:
            wait = POLL_S
            try:
                while True:
                    pulled = list(self._grid.pull_messages([message_id]))
                    if pulled or (end is not None and time.monotonic() >= end):
                        break
                    time.sleep(wait)
                    wait = min(wait * 1.5, MAX_POLL_S)
                with lock:
                    if state["open"] and pulled:  # a reply after the stage ended is dropped, as a late one
                        got[message_id] = pulled
            except Exception as exc:  # the SuperLink failed us: the stage fails, as with Flower's own pull
                with lock:
                    state["error"] = state["error"] or exc
            finally:
                with lock:
                    state["left"] -= 1
                    if state["left"] == 0:
                        all_in.set()

        if not order:
            return []
        for message_id in order:  # daemon threads: one stuck in a dead node's upload cannot hold the exit
            threading.Thread(target=pull, args=(message_id,), daemon=True, name=f"pull-{message_id[:8]}").start()
        all_in.wait(None if end is None else max(0.0, end - time.monotonic()) + POLL_S)
        with lock:
            state["open"] = False
            if state["error"] is not None:
                raise state["error"]
            return [r for m in order for r in got.get(m, [])]


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

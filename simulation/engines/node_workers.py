"""Worker processes for the local engine: each owns some NSO nodes' persistent Contexts and runs
their ClientApp, so a round's NSOs train on every core (threads do not: the many small torch calls
of a local epoch hold the GIL between them; measured 0.91x with two threads).

Each node lives in one worker for the whole run (nodes are dealt largest first to the least loaded
worker, so NSOs of very different sizes still keep every core busy), so each NSO's Context (its
privacy ledger, its SecAgg+ keys) stays in one process, and every NSO computes exactly what it would in order:
its randomness comes from its own seeded generators. Messages and replies cross by pipe (pickled
Flower Messages, a model's weights each way).
"""

from __future__ import annotations

import copy
import multiprocessing
import traceback
from multiprocessing.connection import wait

from flwr.app import Context, Error, Message

CLIENT_APP_RAISED_EXCEPTION = 300  # flwr ErrorCode.CLIENT_APP_RAISED_EXCEPTION


def deliver(client_app, msg: Message, context: Context) -> Message:
    """The ClientApp's reply to `msg` on `context` (an error reply if it raised), as a transport
    would carry it: own copies in and out."""
    inbound = copy.deepcopy(msg)
    try:
        return copy.deepcopy(client_app(inbound, context))
    except Exception as exc:  # noqa: BLE001 - becomes an error reply, as under every engine
        nso = context.node_config.get("nso", context.node_id)
        reply = Message(Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=f"NSO {nso}: {type(exc).__name__}: {exc}"),
                        reply_to=inbound)
        reply.metadata.__dict__["_traceback"] = traceback.format_exc()
        return reply


def _serve(conn, contexts: dict[int, Context], run_id: int, superlink: int) -> None:
    import torch
    from flwr.supercore.task_identity import TaskIdentity

    from clients.app import make_client_app

    from ..sweeps.executors import _die_with_parent

    _die_with_parent()
    torch.set_num_threads(1)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, run_id, superlink
    app = make_client_app()
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(deliver(app, msg, contexts[msg.metadata.dst_node_id]))


def assign(nodes: list[int], n: int, load: dict[int, float]) -> dict[int, int]:
    """Largest load first, each to the worker with the least so far (ties: lowest index)."""
    totals = [0.0] * n
    owner = {}
    for node in sorted(nodes, key=lambda x: (-load.get(x, 1.0), x)):
        w = min(range(n), key=lambda i: (totals[i], i))
        owner[node] = w
        totals[w] += load.get(node, 1.0)
    return owner


class NodeWorkers:
    """`n` spawn processes sharing out the nodes of `contexts`."""

    def __init__(self, contexts: dict[int, Context], n: int, run_id: int, superlink: int,
                 load: dict[int, float] | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        nodes = sorted(contexts)
        self.owner = assign(nodes, n, load or {})
        self.pipes, self.procs = [], []
        for w in range(n):
            parent, child = ctx.Pipe()
            mine = {node: contexts[node] for node in nodes if self.owner[node] == w}
            proc = ctx.Process(target=_serve, args=(child, mine, run_id, superlink), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def deliver(self, messages: list[Message]) -> list[Message]:
        """Replies in message order; each worker handles its messages one after another."""
        queues: dict[int, list[int]] = {}
        for i, msg in enumerate(messages):
            queues.setdefault(self.owner[msg.metadata.dst_node_id], []).append(i)
        replies: list[Message | None] = [None] * len(messages)
        pending = {w: list(idx) for w, idx in queues.items()}
        for w, idx in pending.items():  # one message in flight per worker
            self.pipes[w].send(messages[idx[0]])
        while any(pending.values()):
            busy = [self.pipes[w] for w, idx in pending.items() if idx]
            ready = wait(busy + [self.procs[self.pipes.index(c)].sentinel for c in busy])
            for w, idx in pending.items():
                if idx and self.pipes[w] in ready:
                    replies[idx.pop(0)] = self.pipes[w].recv()
                    if idx:
                        self.pipes[w].send(messages[idx[0]])
                elif idx and not self.procs[w].is_alive():
                    raise RuntimeError(f"local engine worker {w} died (exit code {self.procs[w].exitcode})")
        return replies  # type: ignore[return-value]

    def close(self) -> None:
        for pipe, proc in zip(self.pipes, self.procs):
            try:
                pipe.send(None)
            except OSError:
                pass
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()

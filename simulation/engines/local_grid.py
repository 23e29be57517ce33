"""The `local` engine's Grid: hands each Message straight to the ClientApp, in process.

Flower's simulation engine costs tens of ms of framework time per client per round and polls every
0.1 s; sweeps run hundreds of simulations, so this Grid delivers synchronously instead. It keeps
what a transport guarantees: each node gets its own copy of the message content (SecAgg+ sends one
RecordDict object to every node; shared, clients would corrupt each other), replies carry the
node's id as source, each node keeps one persistent Context, and a ClientApp exception becomes an
error reply, as under the other engines.

With `workers` > 1 the nodes live in worker processes (node_workers.py) and the messages of one
push (one per NSO: a round's training or evaluation) run concurrently, so every core works. Results
are bit-identical to one process: every NSO draws from its own seeded generators, and reply ids are
given in message order.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from .node_workers import NodeWorkers, deliver

class LocalGrid(Grid):
    def __init__(self, client_app: ClientApp, contexts: dict[int, Context], run_id: int,
                 superlink_node_id: int = 1, workers: int = 1, load: dict[int, float] | None = None) -> None:
        self._workers = NodeWorkers(contexts, workers, run_id, superlink_node_id, load) if workers > 1 else None
        self.client_app = client_app
        self.contexts = contexts
        self._run = Run.create_empty(run_id)
        self._ids = itertools.count(1)
        self._replies: dict[str, Message] = {}
        self._superlink = superlink_node_id
        self.delivered = 0
        self.received: list[Message] | None = None  # set to [] to keep a copy of every reply
        # Message() takes run and sender from the process's task identity, as in a ServerApp process.
        TaskIdentity.task_id = 1
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = superlink_node_id

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def _deliver(self, msg: Message) -> Message:
        """The ClientApp's reply to `msg` on its node's Context (an error reply if it raised)."""
        node = msg.metadata.dst_node_id
        if node not in self.contexts:
            raise ValueError(f"message to unknown node {node}")
        return deliver(self.client_app, msg, self.contexts[node])

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = f"m{next(self._ids)}"
            msg.metadata.__dict__["_run_id"] = self._run.run_id
            msg.metadata.__dict__["_src_node_id"] = self._superlink
        unknown = [m.metadata.dst_node_id for m in messages if m.metadata.dst_node_id not in self.contexts]
        if unknown:
            raise ValueError(f"message to unknown node {unknown[0]}")
        if self._workers is not None:
            replies = self._workers.deliver(messages)
        else:
            replies = [self._deliver(m) for m in messages]
        for msg, reply in zip(messages, replies):  # ids in message order, whatever finished first
            reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
            reply.metadata.__dict__["_reply_to_message_id"] = msg.metadata.message_id
            reply.metadata.__dict__["_message_id"] = f"r{next(self._ids)}"
            self.delivered += 1
            if self.received is not None:
                self.received.append(copy.deepcopy(reply))
            self._replies[msg.metadata.message_id] = reply
        return [m.metadata.message_id for m in messages]

    def close(self) -> None:
        if self._workers is not None:
            self._workers.close()

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return list(self.pull_messages(list(self.push_messages(messages))))

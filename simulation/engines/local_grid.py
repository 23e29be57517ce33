"""The `local` engine's Grid: hands each Message straight to the ClientApp, in process.

Flower's simulation engine costs tens of ms of framework time per client per round and polls every
0.1 s; sweeps run hundreds of simulations, so this Grid delivers synchronously instead. It keeps
what a transport guarantees: each node gets its own copy of the message content (SecAgg+ sends one
RecordDict object to every node; shared, clients would corrupt each other), replies carry the
node's id as source, each node keeps one persistent Context, and a ClientApp exception becomes an
error reply, as under the other engines.

With `threads` > 1 the messages of one push (one per NSO: a round's training or evaluation) are
delivered concurrently, each NSO on its own Context, so both cores work. Results are bit-identical
to one thread: every NSO draws from its own seeded generators, and reply ids are given in message
order. The exception is SecAgg+'s masked-vector stage, which quantizes with numpy's global random
state: those messages are delivered one by one, in order, so their draws stay in sequence.
"""

from __future__ import annotations

import copy
import itertools
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

CLIENT_APP_RAISED_EXCEPTION = 300  # flwr ErrorCode.CLIENT_APP_RAISED_EXCEPTION


class LocalGrid(Grid):
    def __init__(self, client_app: ClientApp, contexts: dict[int, Context], run_id: int,
                 superlink_node_id: int = 1, threads: int = 1) -> None:
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="nso") if self.threads > 1 else None
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
        inbound = copy.deepcopy(msg)
        try:
            reply = self.client_app(inbound, self.contexts[node])
            reply = copy.deepcopy(reply)
        except Exception as exc:  # noqa: BLE001 - becomes an error reply, as under every engine
            nso = self.contexts[node].node_config.get("nso", node)
            reason = f"NSO {nso}: {type(exc).__name__}: {exc}"
            reply = Message(Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=inbound)
            reply.metadata.__dict__["_traceback"] = traceback.format_exc()
        reply.metadata.__dict__["_src_node_id"] = node
        reply.metadata.__dict__["_reply_to_message_id"] = msg.metadata.message_id
        return reply

    @staticmethod
    def _sequential(messages: list[Message]) -> bool:
        """SecAgg+ messages: their stages draw from numpy's global random state."""
        return any(RECORD_KEY_CONFIGS in m.content.config_records for m in messages)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = f"m{next(self._ids)}"
            msg.metadata.__dict__["_run_id"] = self._run.run_id
            msg.metadata.__dict__["_src_node_id"] = self._superlink
        if self._pool is not None and len(messages) > 1 and not self._sequential(messages):
            replies = list(self._pool.map(self._deliver, messages))
        else:
            replies = [self._deliver(m) for m in messages]
        for msg, reply in zip(messages, replies):  # ids in message order, whatever finished first
            reply.metadata.__dict__["_message_id"] = f"r{next(self._ids)}"
            self.delivered += 1
            if self.received is not None:
                self.received.append(copy.deepcopy(reply))
            self._replies[msg.metadata.message_id] = reply
        return [m.metadata.message_id for m in messages]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return list(self.pull_messages(list(self.push_messages(messages))))

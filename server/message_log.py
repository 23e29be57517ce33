"""Every reply the ServerApp receives, logged from the server's seat (`message-log` in the run
config; `output.message_log = true`): message type and, per record, its keys and plain values.

It exists so that tests can check, under every engine, that a DP run receives nothing
data-dependent outside the DP and SecAgg+ payloads (tests/test_nothing_in_clear.py). Array records
are logged by their length, SecAgg+'s protocol fields (keys, shares, masked vectors) by name only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flwr.app import Message
from flwr.serverapp import Grid

from datasets.atomic import append_line

PROTOCOL_RECORD = "secaggplus_configs"


def _plain(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    if isinstance(v, list):
        return f"<list of {len(v)}>"
    return v


def describe(msg: Message) -> dict | None:
    """The loggable view of one reply (None for a reply without content, e.g. an error)."""
    if not msg.has_content():
        return None
    c = msg.content
    return {"type": msg.metadata.message_type,
            "arrays": {name: len(rec) for name, rec in c.array_records.items()},
            "metrics": {name: {k: _plain(v) for k, v in rec.items()} for name, rec in c.metric_records.items()},
            "configs": {name: ({k: "<protocol>" for k in rec} if name == PROTOCOL_RECORD
                               else {k: _plain(v) for k, v in rec.items()}) for name, rec in c.config_records.items()}}


class LoggingGrid(Grid):
    """A Grid that appends every reply it hands to the ServerApp to `path`; otherwise the inner grid."""

    def __init__(self, inner: Grid, path: Path) -> None:
        self.inner, self.path = inner, Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def _log(self, replies: Iterable[Message]) -> list[Message]:
        replies = list(replies)
        for msg in replies:
            d = describe(msg)
            if d is not None:
                append_line(self.path, d)
        return replies

    def set_run(self, run):
        return self.inner.set_run(run)

    @property
    def run(self):
        return self.inner.run

    def create_message(self, *args, **kwargs):
        return self.inner.create_message(*args, **kwargs)

    def get_node_ids(self):
        return self.inner.get_node_ids()

    def push_messages(self, messages):
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids):
        return self._log(self.inner.pull_messages(message_ids))

    def send_and_receive(self, messages, *, timeout=None):
        return self._log(self.inner.send_and_receive(messages, timeout=timeout))

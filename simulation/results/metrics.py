"""Reading metrics.jsonl, the one record of a run that every engine leaves (server/records.py
writes it): round rows, and event lines (settings, a planned stop, a failure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunMetrics:
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per round, round 0 = initial model
    events: list[dict[str, Any]] = field(default_factory=list)

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]


def read_new_lines(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines from line `start` on, and the index of the first line not yet read (a
    line still being written is left for the next call)."""
    if not path.exists():
        return [], start
    records = []
    for line in path.read_text().splitlines()[start:]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
        start += 1
    return records, start


def read_metrics(path: Path) -> RunMetrics:
    records, _ = read_new_lines(path)
    return RunMetrics(rows=[r for r in records if "event" not in r], events=[r for r in records if "event" in r])

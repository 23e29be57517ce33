"""What an NSO keeps to itself: the data-dependent diagnostics of a DP run.

Training loss, the Poisson batch sizes (which the accountant assumes hidden), the share of clipped
gradients, SecAgg+'s clipped-value count and the per-round evaluation on the NSO's own test
persons are all functions of its residents' data that no epsilon covers. In a DP run they never
travel to the server: the NSO appends them to its own log, one JSON line per round and phase.
Where the log lives is the NSO's choice (node config `local-dir`); a simulation, which plays every
NSO, puts it at `<output-dir>/nso/<NSO>/local.jsonl` and reads it back for its reports
(simulation/results/local_logs.py) - the server never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context

from datasets.atomic import append_line

LOCAL_DIR_KEY = "local-dir"  # node config: the NSO's own directory for what it keeps
FILE_NAME = "local.jsonl"
_STARTED = "local-log"  # node-state marker: this node has started its log in this run


def local_log_path(context: Context, rc: dict, nso: str) -> Path | None:
    """The NSO's log file, or None when neither the node nor the run names a directory."""
    local = str(context.node_config.get(LOCAL_DIR_KEY) or "")
    if local:
        return Path(local) / FILE_NAME
    out = str(rc.get("output-dir") or "")
    return Path(out) / "nso" / nso / FILE_NAME if out else None


class LocalLog:
    """Appends one record per call; the node's first record of a run starts the file afresh."""

    def __init__(self, context: Context, rc: dict, nso: str) -> None:
        self.path = local_log_path(context, rc, nso)
        self.state = context.state

    def write(self, server_round: int, phase: str, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        if _STARTED not in self.state.config_records:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
            self.state.config_records[_STARTED] = ConfigRecord({"path": str(self.path)})
        append_line(self.path, {"round": server_round, "phase": phase, **record})

"""The NSOs' own logs (clients/local_log.py) beside the server's metrics, for the experimenter.

A simulation plays every NSO as well as the server, so its reports may show what each NSO keeps to
itself in a DP run (training diagnostics, evaluation on its own test persons). They are merged
into the round rows under the keys a run without DP records (`fit.<NSO>.<key>`,
`nso.<NSO>.<metric>`, `federated.*`), so that summaries, sweeps and tuning read one table;
metrics.jsonl itself stays what the server saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clients.local_log import FILE_NAME
from server.records import federated_means

from .metrics import read_new_lines

EVALUATED = ("accuracy", "macro_f1", "wellbeing_mae")


def local_records(run_dir: Path, nsos: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each NSO's log under the run directory (empty for NSOs that kept none here)."""
    return {n: read_new_lines(run_dir / "nso" / n / FILE_NAME)[0] for n in nsos}


def with_local_logs(rows: list[dict[str, Any]], run_dir: Path, nsos: list[str]) -> list[dict[str, Any]]:
    """The round rows with every NSO's local records added (a new list; rows are not changed)."""
    extra: dict[int, dict[str, Any]] = {}
    weights: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for nso, records in local_records(run_dir, nsos).items():
        for rec in records:
            r = int(rec["round"])
            values = {k: v for k, v in rec.items() if k not in ("round", "phase")}
            if rec["phase"] == "evaluate":
                extra.setdefault(r, {}).update({f"nso.{nso}.{k}": values[k] for k in EVALUATED if k in values})
                weights.setdefault(r, []).append((int(values.get("examples", 0)), values))
            else:
                extra.setdefault(r, {}).update({f"fit.{nso}.{k}": v for k, v in values.items()})
    for r, per_nso in weights.items():
        extra[r].update(federated_means(per_nso))
    return [{**row, **extra.get(int(row["round"]), {})} for row in rows]

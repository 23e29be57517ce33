"""Write-then-rename: a crash or a concurrent reader never sees a half-written file.

Every file that marks progress (a prepared partition, index.json, summary.json, results.csv, the
released model) is written through here. The temporary name carries the process id, because sweep
workers may write the same shared file at once; it keeps the target's suffix, because writers such
as numpy's savez append one if it is missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: Path | str, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a temporary name beside `path`, then rename it to `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def finite_or_none(obj: Any) -> Any:
    """NaN and infinities become null: strict JSON has no NaN, and other tools reject Python's."""
    if isinstance(obj, float) and obj != obj or obj in (float("inf"), float("-inf")):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(path: Path | str, payload: dict) -> Path:
    """Atomic, indented, strict JSON (numpy scalars and arrays allowed; NaN written as null)."""
    payload = finite_or_none(json.loads(json.dumps(payload, default=_json_default)))
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_text(path: Path | str, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it: a crash loses no line already written."""
    with path.open("a") as f:
        f.write(json.dumps(finite_or_none(record), allow_nan=False) + "\n")
        f.flush()

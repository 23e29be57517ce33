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


def write_json(path: Path | str, payload: dict) -> Path:
    """Atomic, indented JSON (numpy scalars and arrays allowed)."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_text(path: Path | str, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))

"""The run directory: where one experiment's outputs go.

  config.toml      the resolved config (every default filled in): re-run it to reproduce
  manifest.json    versions, git commit, seed, data fingerprint, engine, machine
  metrics.jsonl    one line per round, appended as the round ends (survives a crash)
  metrics.csv      the same rows as a table with the NSOs' local logs merged in, written at the end
  nso/<NSO>/local.jsonl  what each simulated NSO kept to itself in a DP run (clients/local_log.py)
  model.npz        the released global model (federated engines)
  summary.json     final metrics, privacy and SecAgg+ blocks, timing (docs/results.md); written
                   last, so its presence means the run finished
"""

from __future__ import annotations

import time
from pathlib import Path

from datasets.errors import UserError


def default_run_dir(output_dir: str, name: str, seed: int) -> Path:
    """<output.dir>/<name>-<time>-seed<seed>, with a suffix if that exists already."""
    base = Path(output_dir) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}"
    out, k = base, 1
    while out.exists():
        out, k = Path(f"{base}-{k}"), k + 1
    return out


def new_run_dir(path: Path) -> Path:
    """Create `path`; refuse one that holds anything (a run never mixes with another's files)."""
    if path.exists() and any(path.iterdir()):
        raise UserError(f"run directory {path} exists and is not empty; choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    return path

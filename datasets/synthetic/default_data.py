"""The default simulated data, prepared in a per-user cache, for `flwr run .` without `ppml run`."""

from __future__ import annotations

import os
from pathlib import Path

from ..prepared import FORMAT_VERSION, prepare
from .generator import GeneratorSettings, generate


def default_data_dir(data_seed: int = 0, split_seed: int = 0, test_fraction: float = 0.2,
                     holdout_fraction: float = 0.1) -> str:
    """Generation is deterministic, so concurrent clients racing to create the directory write
    identical files (each written to a temporary name and renamed)."""
    root = Path(os.environ.get("NSO_PPML_CACHE", Path.home() / ".cache" / "nso-ppml"))
    out = root / f"default-v{FORMAT_VERSION}-d{data_seed}-s{split_seed}-t{test_fraction}-h{holdout_fraction}"
    if not (out / "index.json").exists():
        ds = generate(GeneratorSettings(seed=data_seed))
        prepare(ds.windows, out, split_seed, test_fraction, holdout_fraction)
    return str(out)

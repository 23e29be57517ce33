"""Prepared, encoded partitions: one file per NSO (train and test persons) and one held-out file.

An engine prepares these once per run; each NSO client then loads only its own file, which is how
a SuperNode of a real NSO would see only its own data. Every file carries the dataset's label
names, so a client sizes its model from its own data under every engine. Loads are cached per
process, so a client pays for reading once, not every round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write, write_json
from .errors import UserError
from .features import encode, feature_names
from .splits import split_persons, window_split
from .table_schema import BUILTIN, TableSchema

FORMAT_VERSION = 4  # 2: label names and feature names travel with the data (declared schemas);
# 3: the trained persons' features are in the inference samples (their predictions tune PPI++);
# 4: the index counts test and held-out persons (the run's small-set warnings read them)


@dataclass(frozen=True)
class Arrays:
    x: np.ndarray
    y: np.ndarray
    wellbeing: np.ndarray
    person: np.ndarray  # person index within the file (for person-level privacy)

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Partition:
    nso: str
    train: Arrays
    test: Arrays
    labels: tuple[str, ...]
    wellbeing_range: tuple[float, float] | None

    @property
    def n_features(self) -> int:
        return int(self.train.x.shape[1])


def _arrays(df: pd.DataFrame, schema: TableSchema) -> dict[str, np.ndarray]:
    x, y, wb = encode(df, schema)
    person = pd.factorize(df["person_id"].astype(str), sort=False)[0].astype(np.int64)
    return {"x": x, "y": y, "wellbeing": wb, "person": person}


def wellbeing_range(schema: TableSchema) -> list[float]:
    """The well-being scale (predictions are clipped to it); empty when the data have none."""
    return [schema.wellbeing.min, schema.wellbeing.max] if schema.wellbeing else []


def _save(path: Path, **arrays: np.ndarray) -> None:
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def prepare(windows: pd.DataFrame, out_dir: Path | str, seed: int, test_fraction: float,
            holdout_fraction: float, schema: TableSchema = BUILTIN, extra_train: pd.DataFrame | None = None) -> dict:
    """Split by person, encode and write one file per NSO plus holdout.npz; return the index.
    `extra_train` (an audit's canaries) joins each NSO's training persons after its own, outside
    the split, which therefore stays that of the data alone."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split = split_persons(windows, seed, test_fraction, holdout_fraction)
    labels = window_split(windows, split)
    nsos = [str(c) for c in windows["nso"].astype(str).unique()]
    counts = {}
    for nso in nsos:
        in_nso = (windows["nso"].astype(str) == nso).to_numpy()
        frames = {s: windows[in_nso & (labels == s)] for s in ("train", "test")}
        extra = extra_train[extra_train["nso"].astype(str) == nso] if extra_train is not None else None
        if extra is not None and len(extra):
            frames["train"] = pd.concat([frames["train"].astype({"nso": str, "person_id": str, "activity": str}),
                                         extra[frames["train"].columns]], ignore_index=True)
        parts = {s: _arrays(f, schema) for s, f in frames.items()}
        _save(out / f"nso-{nso}.npz", **{f"{s}_{k}": v for s, a in parts.items() for k, v in a.items()},
              labels=np.array(schema.labels), wellbeing_range=np.array(wellbeing_range(schema), dtype=np.float64))
        counts[nso] = {s: int(len(parts[s]["y"])) for s in parts}
        for s in ("train", "test"):
            counts[nso][f"{s}_persons"] = int(parts[s]["person"].max() + 1) if len(parts[s]["y"]) else 0
        counts[nso]["extra_train_persons"] = int(extra["person_id"].nunique()) if extra is not None else 0
    hold = _arrays(windows[labels == "holdout"], schema)
    hold_nso = windows["nso"].astype(str).to_numpy()[labels == "holdout"]
    _save(out / "holdout.npz", **hold, nso=np.array([nsos.index(n) for n in hold_nso], dtype=np.int64))
    index = {"format_version": FORMAT_VERSION, "nsos": nsos, "windows": counts, "holdout_windows": int(len(hold["y"])),
             "holdout_persons": int(len(np.unique(hold["person"]))) if len(hold["y"]) else 0,
             "labels": list(schema.labels), "features": list(feature_names(schema)),
             "wellbeing_range": wellbeing_range(schema) or None,
             "schema": {"name": schema.name, "builtin": schema.builtin, "fingerprint": schema.fingerprint()}}
    write_json(out / "index.json", index)  # written last and atomically: its presence means "complete"
    return index


def read_index(data_dir: Path | str) -> dict:
    p = Path(data_dir) / "index.json"
    if not p.exists():
        raise UserError(f"{data_dir}: not a prepared data directory (no index.json)")
    index = json.loads(p.read_text())
    if index.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{data_dir}: prepared by an older nso-ppml (format {index.get('format_version', 1)}, "
                        f"this one reads {FORMAT_VERSION}); delete the directory and run again")
    return index


@lru_cache(maxsize=32)
def load_partition(data_dir: str, nso: str) -> Partition:
    p = Path(data_dir) / f"nso-{nso}.npz"
    if not p.exists():
        raise UserError(f"{p}: no prepared data for NSO {nso!r}")
    with np.load(p) as z:
        if "labels" not in z:
            raise UserError(f"{p}: prepared by an older nso-ppml (no label names); prepare the data again")
        parts = {s: Arrays(z[f"{s}_x"], z[f"{s}_y"], z[f"{s}_wellbeing"], z[f"{s}_person"]) for s in ("train", "test")}
        labels = tuple(str(v) for v in z["labels"])
        wb = tuple(float(v) for v in z["wellbeing_range"])
    return Partition(nso=nso, labels=labels, wellbeing_range=wb or None, **parts)


@lru_cache(maxsize=4)
def load_holdout(data_dir: str) -> tuple[Arrays, np.ndarray]:
    with np.load(Path(data_dir) / "holdout.npz") as z:
        return Arrays(z["x"], z["y"], z["wellbeing"], z["person"]), z["nso"]

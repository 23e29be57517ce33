"""Canaries: out-of-distribution training examples whose inclusion an auditor tries to guess.

Each canary takes the time structure of real windows - a random day of a random person of its NSO
(person unit), or one random window (record unit) - under a new person id, and replaces every
sensor value with one random value per feature (uniform between the data's smallest and largest
value; codes drawn from those seen) and every label with one random label: a person unlike anyone
else, doing one activity all day, which the model can only fit by memorising them. Canaries are
dealt to the NSOs in turn and each is included in its NSO's training persons independently with
probability 1/2 (from the audit seed, not the run seed). Works for any schema.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datasets.table_schema import TableSchema

from .config import AuditConfig


@dataclass(frozen=True)
class Canaries:
    windows: pd.DataFrame  # every canary's windows (internal column names), person_id = the canary's id
    index: np.ndarray  # canary number of each window
    included: np.ndarray  # [m] bool: trained on
    unit: str

    def included_windows(self) -> pd.DataFrame:
        return self.windows[self.included[self.index]]

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.included.tobytes())
        h.update(pd.util.hash_pandas_object(self.windows, index=False).to_numpy().tobytes())
        return h.hexdigest()


def make_canaries(windows: pd.DataFrame, schema: TableSchema, cfg: AuditConfig, unit: str) -> Canaries:
    rng = np.random.default_rng([cfg.seed, 0xCA9A])
    labels = schema.labels
    draws = _feature_draws(windows, schema)
    nso = windows["nso"].astype(str).to_numpy()
    nsos = list(dict.fromkeys(nso))
    by_nso = {n: np.flatnonzero(nso == n) for n in nsos}
    person = pd.factorize(windows["person_id"].astype(str))[0].astype(np.int64)
    day = windows["day"].to_numpy(np.int64)
    chosen, index = [], []
    for c in range(cfg.canaries):
        rows = by_nso[nsos[c % len(nsos)]]
        pick = rows[rng.integers(len(rows))]
        if unit == "person":  # the picked window's person, its first canary_days days from the picked one
            mine = rows[person[rows] == person[pick]]
            keep = mine[(day[mine] >= day[pick]) & (day[mine] < day[pick] + cfg.canary_days)]
        else:
            keep = np.array([pick])
        chosen.append(keep)
        index.append(np.full(len(keep), c))
    idx = np.concatenate(index)
    out = windows.iloc[np.concatenate(chosen)].reset_index(drop=True)
    for col in ("nso", "person_id", "activity"):
        out[col] = out[col].astype(str)
    out["person_id"] = np.char.add("CANARY-", np.char.zfill(idx.astype(str), 5))
    for name, draw in draws.items():  # one value per canary, the same in all its windows
        out[name] = np.array([draw(rng) for _ in range(cfg.canaries)])[idx]
    out["activity"] = np.array(labels)[rng.integers(len(labels), size=cfg.canaries)][idx]
    out["wellbeing"] = np.nan
    return Canaries(out, idx, rng.random(cfg.canaries) < 0.5, unit)


def _feature_draws(windows: pd.DataFrame, schema: TableSchema) -> dict:
    """Per sensor feature, how to draw a canary's value (time and calendar features stay real)."""
    draws = {}
    for spec in schema.features:
        if spec.name == "day_of_week":
            continue
        values = windows[spec.name].to_numpy(dtype=np.float64)
        values = values[~np.isnan(values)]
        if not len(values):
            continue
        if spec.kind == "code":
            seen = np.unique(values)
            draws[spec.name] = lambda rng, seen=seen: float(seen[rng.integers(len(seen))])
        else:
            lo, hi = float(values.min()), float(values.max())
            draws[spec.name] = lambda rng, lo=lo, hi=hi: float(rng.uniform(lo, hi))
    return draws

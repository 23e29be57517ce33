"""Spread the persons of a table without an `nso` column over N simulated NSOs.

Real public datasets come from one study, not from several countries. To federate them, persons
are dealt to N NSOs stratified by each person's most frequent label, so every NSO sees a similar
activity mix (label heterogeneity across NSOs is then a choice, not an accident of the deal), and
deterministically from the seed, so the same seed gives the same federation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import UserError


def nso_codes(n: int) -> list[str]:
    return [f"NSO{i + 1}" for i in range(n)]


def assign_nsos(windows: pd.DataFrame, n: int, seed: int, label_column: str, source: str) -> pd.DataFrame:
    """`windows` with an `nso` column added: person -> one of NSO1..NSOn."""
    if "nso" in windows.columns:
        raise UserError(f"{source}: the table already has an 'nso' column; data.assign_nsos (--nsos) spreads "
                        "persons only over tables without one (drop the column to reassign)")
    missing = [c for c in ("person_id", label_column) if c not in windows.columns]
    if missing:
        raise UserError(f"{source}: spreading persons over NSOs needs the column(s) {missing}")
    ids = windows["person_id"].astype(str)
    dominant = (pd.DataFrame({"p": ids, "y": windows[label_column].astype(str)})
                .groupby("p", sort=True)["y"].agg(lambda s: s.value_counts().sort_index().idxmax()))
    if len(dominant) < n:
        raise UserError(f"{source}: {len(dominant)} persons cannot be spread over {n} NSOs")
    rng = np.random.default_rng([seed, n])
    codes, order = nso_codes(n), []
    for _, persons in dominant.groupby(dominant, sort=True):  # strata in label order
        order += list(rng.permutation(persons.index.to_numpy()))
    start = int(rng.integers(n))
    mapping = {p: codes[(start + i) % n] for i, p in enumerate(order)}
    out = windows.copy()
    out.insert(0, "nso", ids.map(mapping).to_numpy())
    return out

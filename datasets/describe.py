"""What is in a dataset, per NSO, beside the fact sheet: for `ppml data describe` and summaries.

Works for any declared schema (labels, window length, features); the comparison with published
HETUS minutes is made only where the data speak of HETUS activities (the simulator's schema).
"""

from __future__ import annotations

import pandas as pd

from . import facts
from .table_schema import BUILTIN, TableSchema


def person_days(windows: pd.DataFrame) -> pd.Series:
    return windows.groupby("nso", observed=True).apply(
        lambda g: len(g[["person_id", "day"]].drop_duplicates()), include_groups=False)


def minutes_per_day(windows: pd.DataFrame, schema: TableSchema = BUILTIN) -> pd.DataFrame:
    """Minutes per day (or per recording session) per label (rows) and NSO (columns)."""
    counts = windows.groupby(["nso", "activity"], observed=False).size().unstack("nso").fillna(0)
    days = person_days(windows)
    out = counts.reindex(list(schema.labels)).fillna(0) * (schema.windows.seconds / 60) / days
    return out[[c for c in out.columns if c in days.index]]


def published_minutes(nsos: list[str], schema: TableSchema = BUILTIN) -> pd.DataFrame:
    """Fact-sheet minutes (normalised to 1440) for the NSOs that are fact-sheet countries; empty
    unless the labels are the HETUS activities themselves."""
    if not schema.builtin:
        return pd.DataFrame(index=list(schema.labels))
    cols = {c: facts.minutes_per_day(c) for c in nsos if c in facts.COUNTRIES}
    return pd.DataFrame(cols, index=list(schema.labels))


def overview(windows: pd.DataFrame, schema: TableSchema = BUILTIN) -> pd.DataFrame:
    g = windows.groupby("nso", observed=True)
    features = [f.name for f in schema.features]
    out = pd.DataFrame({
        "persons": g["person_id"].nunique(),
        "windows": g.size(),
        "days": person_days(windows),
        "wellbeing_mean": g["wellbeing"].mean(),
        "wellbeing_rated_share": g["wellbeing"].apply(lambda s: s.notna().mean()),
        "missing_share": g[features].apply(lambda d: float(d.isna().to_numpy().mean())),
    })
    out["complete_days"] = (out["windows"] == out["days"] * schema.windows.slots_per_day)
    return out


def wellbeing_by_activity(windows: pd.DataFrame, schema: TableSchema = BUILTIN) -> pd.Series:
    return windows.groupby("activity", observed=False)["wellbeing"].mean().reindex(list(schema.labels))

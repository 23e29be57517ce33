"""What is in a dataset, per NSO, beside the fact sheet: for `ppml data describe` and summaries."""

from __future__ import annotations

import pandas as pd

from . import facts
from .schema import ACTIVITIES, SLOTS_PER_DAY, SLOT_MINUTES


def person_days(windows: pd.DataFrame) -> pd.Series:
    return windows.groupby("nso", observed=True).apply(
        lambda g: len(g[["person_id", "day"]].drop_duplicates()), include_groups=False)


def minutes_per_day(windows: pd.DataFrame) -> pd.DataFrame:
    """Minutes per day per activity (rows) and NSO (columns)."""
    counts = windows.groupby(["nso", "activity"], observed=False).size().unstack("nso").fillna(0)
    days = person_days(windows)
    out = counts.loc[list(ACTIVITIES)] * SLOT_MINUTES / days
    return out[[c for c in out.columns if c in days.index]]


def published_minutes(nsos: list[str]) -> pd.DataFrame:
    """Fact-sheet minutes (normalised to 1440) for the NSOs that are fact-sheet countries."""
    cols = {c: facts.minutes_per_day(c) for c in nsos if c in facts.COUNTRIES}
    return pd.DataFrame(cols, index=list(ACTIVITIES))


def overview(windows: pd.DataFrame) -> pd.DataFrame:
    g = windows.groupby("nso", observed=True)
    out = pd.DataFrame({
        "persons": g["person_id"].nunique(),
        "windows": g.size(),
        "days": person_days(windows),
        "wellbeing_mean": g["wellbeing"].mean(),
        "wellbeing_rated_share": g["wellbeing"].apply(lambda s: s.notna().mean()),
        "missing_enmo_share": g["enmo_mean"].apply(lambda s: s.isna().mean()),
    })
    out["complete_days"] = (out["windows"] == out["days"] * SLOTS_PER_DAY)
    return out


def wellbeing_by_activity(windows: pd.DataFrame) -> pd.Series:
    return windows.groupby("activity", observed=False)["wellbeing"].mean().loc[list(ACTIVITIES)]

"""Validate a window table before anything runs, with messages that name file, column and rows.

Simulated and imported data go through the same checks, so a real NSO file that would silently
train on garbage (a typo in a label, a duplicated slot, a text value in a sensor column) stops here
with one message listing every problem found.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataValidationError
from .dataset import MIN_PERSONS
from .schema import (
    ACTIVITIES,
    FEATURE_COLUMNS,
    FEATURE_RANGES,
    KEY_COLUMNS,
    LABEL_COLUMN,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SLOTS_PER_DAY,
    WELLBEING_COLUMN,
    WELLBEING_RANGE,
)

MAX_EXAMPLES = 5


def _rows(mask: np.ndarray | pd.Series) -> str:
    """Data row numbers (1 = first row after any header) of the first offending rows."""
    idx = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(i + 1) for i in idx[:MAX_EXAMPLES])
    more = f" and {len(idx) - MAX_EXAMPLES} more" if len(idx) > MAX_EXAMPLES else ""
    return f"rows {shown}{more}"


def _numeric(df: pd.DataFrame, col: str, problems: list[str]) -> pd.Series | None:
    s = df[col]
    if pd.api.types.is_bool_dtype(s) or not (pd.api.types.is_numeric_dtype(s) or s.dtype == object
                                             or pd.api.types.is_string_dtype(s)):
        problems.append(f"column '{col}' has type {s.dtype}; a number is required")
        return None
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(np.float64)
    converted = pd.to_numeric(s, errors="coerce")
    bad = converted.isna() & s.notna() & (s.astype(str).str.strip() != "")
    if bad.any():
        first = s[bad].iloc[0]
        problems.append(f"column '{col}' must be numeric; {_rows(bad)} hold text such as {first!r}")
        return None
    return converted.astype(np.float64)


def _columns(df: pd.DataFrame, where: str) -> None:
    """Empty tables and missing or undeclared columns end validation at once."""
    if len(df) == 0:
        raise DataValidationError(f"{where}: the table is empty (no rows); a window table needs at least "
                                  f"{MIN_PERSONS} persons per NSO")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    unknown = [c for c in df.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    problems: list[str] = []
    if missing:
        problems.append(f"missing column(s) {missing}; required: {', '.join(REQUIRED_COLUMNS)}")
    if unknown:
        problems.append(f"unknown column(s) {unknown}; allowed: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
    if problems:
        raise DataValidationError(_message(where, problems))


def _keys(df: pd.DataFrame, out: dict, problems: list[str]) -> None:
    """nso, person_id and the label as text; day and slot as whole numbers in range."""
    for col in ("nso", "person_id", LABEL_COLUMN):
        s = df[col]
        if s.isna().any():
            problems.append(f"column '{col}' has empty values in {_rows(s.isna())}; it may not be empty")
        out[col] = s.astype(str)
    for col in ("day", "slot"):
        s = _numeric(df, col, problems)
        if s is None:
            continue
        bad = ~np.isfinite(s) | (s != np.round(s))
        if bad.any():
            problems.append(f"column '{col}' must hold whole numbers; {_rows(bad)} do not (e.g. {df[col][bad].iloc[0]!r})")
            continue
        lo, hi = (0, SLOTS_PER_DAY - 1) if col == "slot" else (0, None)
        out_of = (s < lo) | ((s > hi) if hi is not None else False)
        if np.any(out_of):
            allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            problems.append(f"column '{col}' must be in {allowed}; {_rows(out_of)} are not "
                            f"(e.g. {s[out_of].iloc[0]:g})")
        out[col] = s.astype(np.int32)


def _feature(df: pd.DataFrame, col: str, lo: float | None, hi: float | None, out: dict, problems: list[str]) -> None:
    """One numeric column: finite or NaN, within its documented range, codes whole."""
    s = _numeric(df, col, problems)
    if s is None:
        return
    inf = np.isinf(s)
    if inf.any():
        problems.append(f"column '{col}' has infinite values in {_rows(inf)}; use NaN (empty) for a missing value")
        return
    if col == "day_of_week" and s.isna().any():
        problems.append(f"column 'day_of_week' has empty values in {_rows(s.isna())}; it may not be empty")
    below = (s < lo) if lo is not None else pd.Series(False, index=s.index)
    above = (s > hi) if hi is not None else pd.Series(False, index=s.index)
    bad = below | above
    if bad.any():
        problems.append(f"column '{col}' must be in [{lo}, {hi if hi is not None else 'inf'}]; "
                        f"{_rows(bad)} are not (e.g. {s[bad].iloc[0]:g})")
    if col in ("location", "day_of_week"):
        frac = s.notna() & (s != np.round(s))
        if frac.any():
            problems.append(f"column '{col}' holds codes (whole numbers); {_rows(frac)} do not")
    out[col] = s.astype(np.float32)


def _table_rules(table: pd.DataFrame, problems: list[str]) -> None:
    """Rules across rows: one row per person, day and slot; one NSO per person; enough persons."""
    dup = table.duplicated(subset=["person_id", "day", "slot"], keep=False).to_numpy()
    if dup.any():
        first = table[dup].iloc[0]
        problems.append(f"duplicate (person_id, day, slot) rows: {_rows(dup)} "
                        f"(e.g. person_id={first.person_id!r}, day={first.day}, slot={first.slot}); "
                        "each person has one row per day and slot")
    nsos_per_person = table.groupby("person_id")["nso"].nunique()
    multi = nsos_per_person[nsos_per_person > 1]
    if len(multi):
        problems.append(f"person_id(s) {list(multi.index[:MAX_EXAMPLES])} appear under more than one NSO; "
                        "a person belongs to one NSO")
    persons = table.groupby("nso")["person_id"].nunique()
    for nso, n in persons[persons < MIN_PERSONS].items():
        problems.append(f"NSO {nso!r} has {n} person(s); at least {MIN_PERSONS} are needed to split persons "
                        "into train, test and held-out sets")


def validate_windows(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check `df` against docs/data_format.md; return it with normalised dtypes or raise one error
    that lists every problem found."""
    where = f"{source}"
    _columns(df, where)
    out: dict = {}
    problems: list[str] = []
    _keys(df, out, problems)
    for col, (lo, hi) in list(FEATURE_RANGES.items()) + ([(WELLBEING_COLUMN, WELLBEING_RANGE)]
                                                         if WELLBEING_COLUMN in df.columns else []):
        _feature(df, col, lo, hi, out, problems)
    if LABEL_COLUMN in out:
        unknown_labels = ~out[LABEL_COLUMN].isin(ACTIVITIES)
        if unknown_labels.any():
            names = sorted(out[LABEL_COLUMN][unknown_labels].unique())[:MAX_EXAMPLES]
            problems.append(f"column 'activity' has unknown label(s) {names} in {_rows(unknown_labels)}; "
                            f"allowed: {', '.join(ACTIVITIES)}")
    if problems:
        raise DataValidationError(_message(where, problems))
    table = pd.DataFrame(out)
    _table_rules(table, problems)
    if problems:
        raise DataValidationError(_message(where, problems))
    table["nso"] = pd.Categorical(table["nso"], categories=list(dict.fromkeys(table["nso"])))
    table["person_id"] = pd.Categorical(table["person_id"], categories=list(dict.fromkeys(table["person_id"])))
    table[LABEL_COLUMN] = pd.Categorical(table[LABEL_COLUMN], categories=list(ACTIVITIES))
    if WELLBEING_COLUMN not in table:
        table[WELLBEING_COLUMN] = np.float32(np.nan)
    return table[list(KEY_COLUMNS) + list(FEATURE_COLUMNS) + [LABEL_COLUMN, WELLBEING_COLUMN]]


def _message(where: str, problems: list[str]) -> str:
    return f"{where} is not a valid window table (see docs/data_format.md):\n" + "\n".join(f"  - {p}" for p in problems)

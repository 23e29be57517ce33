"""Validate a window table against its schema before anything runs, with messages that name file,
column and rows.

Simulated and imported data go through the same checks, so a real NSO file that would silently
train on garbage (a typo in a label, a duplicated slot, a text value in a sensor column) stops here
with one message listing every problem found. The result uses the internal column names: the
label column becomes `activity` and the well-being column `wellbeing`, whatever the file calls them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataValidationError
from .dataset import MIN_PERSONS
from .table_schema import BUILTIN, KEYS, TableSchema, upper_bound

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


def _columns(df: pd.DataFrame, where: str, schema: TableSchema, labelled: bool = True) -> None:
    """Empty tables and missing or undeclared columns end validation at once; a sensor-only table
    (`labelled=False`: persons without diaries) has every column but the label."""
    if len(df) == 0:
        raise DataValidationError(f"{where}: the table is empty (no rows); a window table needs at least "
                                  f"{MIN_PERSONS} persons per NSO")
    required, optional = schema.columns()
    problems: list[str] = []
    if not labelled:
        required = tuple(c for c in required if c != schema.label.column)
        if schema.label.column in df.columns:
            problems.append(f"column '{schema.label.column}' holds diary labels, which a sensor-only table does not "
                            "have; drop it, or import the table as a diary sample (without --sensor-only)")
    missing = [c for c in required if c not in df.columns]
    unknown = [c for c in df.columns if c not in required + optional and not (not labelled and c == schema.label.column)]
    if missing:
        hint = ("; a table without an 'nso' column can be spread over NSOs with data.assign_nsos = N "
                "(or `ppml data import --nsos N`)") if "nso" in missing else ""
        problems.append(f"missing column(s) {missing}; required: {', '.join(required)}{hint}")
    if unknown:
        problems.append(f"unknown column(s) {unknown}; allowed: {', '.join(required + optional)}"
                        + ("" if schema.builtin else f" (declared in the schema '{schema.name}')"))
    if problems:
        raise DataValidationError(_message(where, problems))


def _keys(df: pd.DataFrame, out: dict, problems: list[str], schema: TableSchema, labelled: bool = True) -> None:
    """nso, person_id and the label (if labelled) as text; day and slot as whole numbers in range."""
    keys = [("nso", "nso"), ("person_id", "person_id")] + ([(schema.label.column, "activity")] if labelled else [])
    for col, name in keys:
        s = df[col]
        if s.isna().any():
            problems.append(f"column '{col}' has empty values in {_rows(s.isna())}; it may not be empty")
        out[name] = s.astype(str)
    for col in ("day", "slot"):
        s = _numeric(df, col, problems)
        if s is None:
            continue
        bad = ~np.isfinite(s) | (s != np.round(s))
        if bad.any():
            problems.append(f"column '{col}' must hold whole numbers; {_rows(bad)} do not (e.g. {df[col][bad].iloc[0]!r})")
            continue
        lo, hi = (0, schema.windows.slots_per_day - 1) if col == "slot" else (0, None)
        out_of = (s < lo) | ((s > hi) if hi is not None else False)
        if np.any(out_of):
            allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            problems.append(f"column '{col}' must be in {allowed}; {_rows(out_of)} are not "
                            f"(e.g. {s[out_of].iloc[0]:g})")
        out[col] = s.astype(np.int32)


def _feature(df: pd.DataFrame, col: str, lo: float | None, hi: float | None, out: dict, problems: list[str],
             code: bool = False, missing_ok: bool = True, name: str | None = None) -> None:
    """One numeric column: finite or NaN (where allowed), within its declared range, codes whole."""
    s = _numeric(df, col, problems)
    if s is None:
        return
    inf = np.isinf(s)
    if inf.any():
        problems.append(f"column '{col}' has infinite values in {_rows(inf)}; use NaN (empty) for a missing value")
        return
    if not missing_ok and s.isna().any():
        problems.append(f"column '{col}' has empty values in {_rows(s.isna())}; it may not be empty "
                        "(the schema declares missing = false)")
    below = (s < lo) if lo is not None else pd.Series(False, index=s.index)
    above = (s > hi) if hi is not None else pd.Series(False, index=s.index)
    bad = below | above
    if bad.any():
        problems.append(f"column '{col}' must be in [{lo}, {hi if hi is not None else 'inf'}]; "
                        f"{_rows(bad)} are not (e.g. {s[bad].iloc[0]:g})")
    if code:
        frac = s.notna() & (s != np.round(s))
        if frac.any():
            problems.append(f"column '{col}' holds codes (whole numbers); {_rows(frac)} do not")
    out[name or col] = s.astype(np.float32)


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
                        "into train, test and held-out sets (one person each at the least)")


def validate_windows(df: pd.DataFrame, source: str, schema: TableSchema = BUILTIN, labelled: bool = True) -> pd.DataFrame:
    """Check `df` against `schema` (docs/data_format.md); return it with normalised dtypes and
    internal column names, or raise one error that lists every problem found. `labelled=False`: a
    sensor-only table, without the label column (its `activity` is left empty)."""
    where = f"{source}"
    _columns(df, where, schema, labelled)
    out: dict = {}
    problems: list[str] = []
    _keys(df, out, problems, schema, labelled)
    for spec in schema.features:
        _feature(df, spec.name, spec.bounds()[0], upper_bound(schema, spec), out, problems,
                 code=spec.kind == "code", missing_ok=spec.missing)
    wb = schema.wellbeing
    if wb is not None and wb.column in df.columns:
        _feature(df, wb.column, wb.min, wb.max, out, problems, name="wellbeing")
    unknown_labels = ~out["activity"].isin(schema.labels) if labelled else None
    if unknown_labels is not None and unknown_labels.any():
        names = sorted(out["activity"][unknown_labels].unique())[:MAX_EXAMPLES]
        problems.append(f"column '{schema.label.column}' has unknown label(s) {names} in {_rows(unknown_labels)}; "
                        f"allowed: {', '.join(schema.labels)}")
    if problems:
        raise DataValidationError(_message(where, problems))
    table = pd.DataFrame(out)
    _table_rules(table, problems)
    if problems:
        raise DataValidationError(_message(where, problems))
    table["nso"] = pd.Categorical(table["nso"], categories=list(dict.fromkeys(table["nso"])))
    table["person_id"] = pd.Categorical(table["person_id"], categories=list(dict.fromkeys(table["person_id"])))
    table["activity"] = pd.Categorical(table["activity"] if labelled else [None] * len(table),
                                       categories=list(schema.labels))
    if "wellbeing" not in table:
        table["wellbeing"] = np.float32(np.nan)
    return table[list(KEYS) + [f.name for f in schema.features] + ["activity", "wellbeing"]]


def _message(where: str, problems: list[str]) -> str:
    return f"{where} is not a valid window table (see docs/data_format.md):\n" + "\n".join(f"  - {p}" for p in problems)

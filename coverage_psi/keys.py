"""Composite keys, normalised the same way on both sides before any hashing or encryption.

A person's key is first name | surname | date of birth | postcode, upper case, accents and
punctuation removed, the date as YYYYMMDD. Both parties must use the same normalisation (its
version is part of the protocol's handshake); a record whose key cannot be formed (an empty name,
an impossible date) is refused with its row numbers, and a register that lists one key twice is
refused too (a register holds each person once). A third party's list may repeat persons; it is
de-duplicated, and the count of repeats stays with the third party.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from datasets.errors import UserError

COLUMNS = ("first_name", "surname", "birth_date", "postcode")


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).upper()


def _rows(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    return ", ".join(str(i + 1) for i in idx[:5]) + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")


def normalise(records: pd.DataFrame, source: str) -> np.ndarray:
    """One key string per record; raises UserError naming the malformed rows."""
    missing = [c for c in COLUMNS if c not in records.columns]
    if missing:
        raise UserError(f"{source}: missing column(s) {missing}; a list needs {', '.join(COLUMNS)}")
    if len(records) == 0:
        raise UserError(f"{source}: the list is empty; there is nothing to measure")
    first = records["first_name"].fillna("").astype(str).map(_plain).to_numpy()
    last = records["surname"].fillna("").astype(str).map(_plain).to_numpy()
    dates = pd.to_datetime(records["birth_date"].fillna("").astype(str), format="%Y-%m-%d", errors="coerce")
    postcode = records["postcode"].fillna("").astype(str).map(_plain).to_numpy()
    problems = []
    for name, bad in (("first_name", first == ""), ("surname", last == ""), ("birth_date", dates.isna().to_numpy())):
        if bad.any():
            what = "a date YYYY-MM-DD" if name == "birth_date" else "a name with letters"
            problems.append(f"column '{name}' in rows {_rows(bad)} is not {what}")
    if problems:
        raise UserError(f"{source}: malformed keys:\n" + "\n".join(f"  - {p}" for p in problems))
    dob = dates.dt.strftime("%Y%m%d").to_numpy()
    return np.char.add(np.char.add(np.char.add(np.char.add(first.astype(str), "|"), last.astype(str)), "|"),
                       np.char.add(np.char.add(dob.astype(str), "|"), postcode.astype(str)))


def read_list(path: Path | str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such list (CSV with {', '.join(COLUMNS)})")
    try:
        return pd.read_csv(p, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{p}: the file is empty") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{p}: not a readable CSV list: {exc}") from None


def register_keys(records: pd.DataFrame, source: str) -> list[str]:
    """The NSO's keys: every person once, or an error naming the repeated rows."""
    keys = normalise(records, source)
    dup = pd.Series(keys).duplicated(keep=False).to_numpy()
    if dup.any():
        raise UserError(f"{source}: rows {_rows(dup)} repeat a person's key; a register lists each person once")
    return keys.tolist()


def source_keys(records: pd.DataFrame, source: str) -> tuple[list[str], int]:
    """The third party's distinct keys and how many repeats were dropped."""
    keys = normalise(records, source)
    distinct = list(dict.fromkeys(keys.tolist()))
    return distinct, len(keys) - len(distinct)

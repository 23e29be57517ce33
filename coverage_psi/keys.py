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


def _join(*parts: np.ndarray) -> np.ndarray:
    out = parts[0].astype(str)
    for p in parts[1:]:
        out = np.char.add(np.char.add(out, "|"), p.astype(str))
    return out


def _fields(records: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """The normalised fields of every record; raises UserError naming the malformed rows."""
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
    day, month = dates.dt.strftime("%d").to_numpy().astype(str), dates.dt.strftime("%m").to_numpy().astype(str)
    low = day < month
    either = np.char.add(np.where(low, day, month), np.where(low, month, day))  # the same whichever way round
    year = dates.dt.strftime("%Y").to_numpy().astype(str)
    return {"first": first, "surname": last, "dob": dates.dt.strftime("%Y%m%d").to_numpy(), "postcode": postcode,
            "year": year, "dob_either": np.char.add(year, either)}


# Match keys (docs/coverage.md): each leaves out or loosens one field, so that a record with one key
# error in that field still agrees with the register on that key.
MATCH_KEYS = {
    "exact": ("first", "surname", "dob", "postcode"),
    "no_surname": ("first", "dob", "postcode"),        # a surname misspelt or changed
    "no_first": ("surname", "dob", "postcode"),        # a first name misspelt or shortened
    "no_postcode": ("first", "surname", "dob"),        # a postcode missing or moved
    "dob_either": ("first", "surname", "dob_either", "postcode"),  # day and month transposed
    "birth_year": ("first", "surname", "year", "postcode"),  # any error in the day or month
}


def _exact(f: dict[str, np.ndarray]) -> np.ndarray:
    return _join(*(f[k] for k in MATCH_KEYS["exact"]))


def _tagged(f: dict[str, np.ndarray], kinds: tuple[str, ...]) -> np.ndarray:
    return np.stack([np.char.add(f"{k}:", _join(*(f[x] for x in MATCH_KEYS[k]))) for k in kinds], axis=1)


def normalise(records: pd.DataFrame, source: str) -> np.ndarray:
    """One exact key string per record (FIRST|SURNAME|YYYYMMDD|POSTCODE); raises UserError naming the
    malformed rows."""
    return _exact(_fields(records, source))


def match_keys(records: pd.DataFrame, source: str, kinds: tuple[str, ...]) -> np.ndarray:
    """records x kinds tagged key strings ("kind:" first, so keys of two kinds never agree)."""
    return _tagged(_fields(records, source), kinds)


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


def _once(keys: np.ndarray, source: str) -> None:
    dup = pd.Series(keys).duplicated(keep=False).to_numpy()
    if dup.any():
        raise UserError(f"{source}: rows {_rows(dup)} repeat a person's key; a register lists each person once")


def register_keys(records: pd.DataFrame, source: str) -> list[str]:
    """The NSO's keys: every person once, or an error naming the repeated rows."""
    keys = normalise(records, source)
    _once(keys, source)
    return keys.tolist()


def register_groups(records: pd.DataFrame, source: str, kinds: tuple[str, ...]) -> np.ndarray:
    """The NSO's persons x kinds match keys: every person once (by the exact key), or an error."""
    f = _fields(records, source)
    _once(_exact(f), source)
    return _tagged(f, kinds)


def source_match_keys(records: pd.DataFrame, source: str, kinds: tuple[str, ...]) -> tuple[list[str], int]:
    """The third party's distinct tagged keys of every kind, and how many repeated records (same
    exact key) were dropped."""
    f = _fields(records, source)
    exact = _exact(f)
    return list(dict.fromkeys(_tagged(f, kinds).ravel().tolist())), len(exact) - len(set(exact.tolist()))


def source_keys(records: pd.DataFrame, source: str) -> tuple[list[str], int]:
    """The third party's distinct keys and how many repeats were dropped."""
    keys = normalise(records, source)
    distinct = list(dict.fromkeys(keys.tolist()))
    return distinct, len(keys) - len(distinct)

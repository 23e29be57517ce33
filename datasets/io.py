"""Read and write datasets in the documented table format (Parquet or CSV).

A dataset directory holds windows.parquet (or windows.csv), optionally persons.parquet/.csv,
schema.toml (absent: the simulator's schema) and summary.json. A single window file can also be
given directly, with its schema beside it (table_schema.find_schema).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

import tomli_w

from .assign import assign_nsos
from .errors import DataValidationError, UserError
from .atomic import atomic_write
from .dataset import Dataset
from .table_schema import SCHEMA_FILE, TableSchema, resolve_schema
from .validation import validate_windows

FORMATS = ("parquet", "csv")


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            table = pd.read_csv(path)
            _check_separator(table, path)
            return table
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: the file is empty (no header, no rows)") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from None
    raise UserError(f"{path}: unsupported file type {suffix!r}; allowed: .parquet, .csv")


def _check_separator(table: pd.DataFrame, path: Path) -> None:
    """A CSV saved with ';' or tabs (common in European spreadsheets) reads as one column: say so,
    rather than list every column as missing."""
    if len(table.columns) == 1:
        header = str(table.columns[0])
        for sep, name in ((";", "';'"), ("\t", "tabs")):
            if sep in header:
                raise DataValidationError(f"{path}: its columns are separated by {name} (header {header[:60]!r}); "
                                          "nso-ppml reads comma-separated CSV: save it with ',' separators, or as "
                                          ".parquet")


def find_windows_file(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for fmt in FORMATS:
            candidate = path / f"windows.{fmt}"
            if candidate.exists():
                return candidate
        raise UserError(f"{path}: no windows.parquet or windows.csv in this directory")
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    return path


def load_windows(path: Path | str, schema: TableSchema | None = None, assign: int | None = None,
                 seed: int = 0, labelled: bool = True) -> pd.DataFrame:
    """Load and validate a window table (file, or dataset directory) against `schema` (default:
    the one beside the data, else the simulator's); `assign` spreads its persons over that many NSOs."""
    file = find_windows_file(Path(path))
    schema = schema or resolve_schema(path)
    raw = _read_table(file)
    if assign is not None:
        if not labelled:
            raise UserError("--nsos spreads persons stratified by their labels; a sensor-only table has none: give it "
                            "an 'nso' column")
        raw = assign_nsos(raw, assign, seed, schema.label.column, str(file))
    return validate_windows(raw, str(file), schema, labelled)


def load_dataset(path: Path | str, schema_path: Path | str | None = None, assign: int | None = None,
                 seed: int = 0, labelled: bool = True) -> Dataset:
    """Windows (validated), its schema and, where present, the persons table; `labelled=False` for
    a sensor-only table (no label column)."""
    file = find_windows_file(Path(path))
    schema = resolve_schema(path, schema_path)
    windows = load_windows(file, schema, assign, seed, labelled)
    persons = pd.DataFrame()
    for fmt in FORMATS:
        candidate = file.parent / f"persons.{fmt}"
        if candidate.exists():
            persons = _read_table(candidate)
            break
    return Dataset(windows=windows, persons=persons, schema=schema)


def write_schema(schema: TableSchema, path: Path) -> Path:
    body = schema.model_dump(mode="json", exclude={"builtin"}, exclude_none=True, exclude_defaults=True)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(tomli_w.dumps(body)))


def write_dataset(dataset: Dataset, out_dir: Path | str, fmt: str = "parquet") -> list[Path]:
    """Write windows, persons and (unless it is the simulator's) the schema in `fmt`, with the
    label and well-being columns under the schema's names; each file is written to a temporary
    name, then renamed."""
    if fmt not in FORMATS:
        raise UserError(f"unknown data format {fmt!r}; allowed: {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    schema = dataset.schema
    windows = dataset.windows.rename(columns={"activity": schema.label.column, "wellbeing": (
        schema.wellbeing.column if schema.wellbeing else "wellbeing")})
    if schema.wellbeing is None:
        windows = windows.drop(columns=["wellbeing"], errors="ignore")
    if windows[schema.label.column].isna().all():  # a sensor-only table: no diary, no label column
        windows = windows.drop(columns=[schema.label.column])
    if not schema.builtin:
        written.append(write_schema(schema, out / SCHEMA_FILE))
    for name, table in (("windows", windows), ("persons", dataset.persons)):
        if fmt == "parquet":
            written.append(atomic_write(out / f"{name}.parquet", lambda tmp: table.to_parquet(tmp, index=False)))
        else:
            written.append(atomic_write(out / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False)))
    return written


def fingerprint(windows: pd.DataFrame) -> str:
    """SHA-256 over column names and values: identical data, identical fingerprint, in any format."""
    h = hashlib.sha256()
    for col in windows.columns:
        s = windows[col]
        h.update(col.encode())
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            codes, uniques = pd.factorize(s.astype(str), sort=False)
            h.update(np.asarray(codes, dtype=np.int64).tobytes())
            h.update("\x00".join(map(str, uniques)).encode())
        else:
            h.update(np.ascontiguousarray(s.to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()

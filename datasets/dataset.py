"""The in-memory dataset of the window-table format, shared by the simulator and imported data."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .table_schema import BUILTIN, TableSchema

# Fewest persons an NSO may have: the person-level splits need at least one train, one test and one
# held-out person (datasets/splits.py gives each split max(1, round(n x fraction)) persons). Small
# real datasets need this floor; with so few persons an NSO's test metrics rest on one person.
MIN_PERSONS = 3


@dataclass
class Dataset:
    """A window table, its persons table and its schema (docs/data_format.md)."""

    windows: pd.DataFrame
    persons: pd.DataFrame
    schema: TableSchema = field(default_factory=lambda: BUILTIN)

"""The in-memory dataset of the window-table format, shared by the simulator and imported data."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# Fewest persons an NSO may have: the person-level splits need at least one train, one test and
# one held-out person, and with fewer than ten the test and held-out shares round to nothing useful.
MIN_PERSONS = 10


@dataclass
class Dataset:
    """A window table and its persons table, in the documented format (docs/data_format.md)."""

    windows: pd.DataFrame
    persons: pd.DataFrame

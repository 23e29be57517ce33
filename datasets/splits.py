"""Person-level splits: a person's windows are never on both sides of a split.

Random window splits overstate activity-recognition accuracy by about 10 points (fact sheet), so
every split here is by person, inside each NSO: train and test persons stay with the NSO, held-out
persons of every NSO form the coordinator's central evaluation set.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from .errors import UserError

SPLITS = ("train", "test", "holdout")


def split_persons(windows: pd.DataFrame, seed: int, test_fraction: float = 0.2,
                  holdout_fraction: float = 0.1) -> pd.Series:
    """Map each person_id to 'train', 'test' or 'holdout', deterministically from `seed`."""
    if not (0 < test_fraction < 1 and 0 < holdout_fraction < 1 and test_fraction + holdout_fraction < 1):
        raise UserError(f"split fractions test={test_fraction}, holdout={holdout_fraction} must each be in "
                        "(0, 1) and sum to less than 1")
    persons = windows[["nso", "person_id"]].drop_duplicates()
    labels = {}
    for nso, group in persons.groupby("nso", observed=True, sort=False):
        ids = np.array(sorted(group["person_id"].astype(str)))
        n = len(ids)
        n_hold = max(1, int(round(n * holdout_fraction)))
        n_test = max(1, int(round(n * test_fraction)))
        if n - n_hold - n_test < 1:
            raise UserError(f"NSO {nso!r} has {n} persons: too few for a train, test and held-out split "
                            f"with test={test_fraction} and holdout={holdout_fraction}")
        rng = np.random.default_rng([seed, zlib.crc32(str(nso).encode())])
        order = rng.permutation(n)
        for rank, i in enumerate(order):
            labels[ids[i]] = "holdout" if rank < n_hold else "test" if rank < n_hold + n_test else "train"
    return pd.Series(labels, name="split")


def window_split(windows: pd.DataFrame, person_split: pd.Series) -> np.ndarray:
    """Split label of every window, by its person."""
    return windows["person_id"].astype(str).map(person_split).to_numpy()

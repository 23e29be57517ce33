"""What each released number sums: cells (overall, and one per category of each breakdown) over
person-days, each person counting at most `max_days` days.

The published statistic of a cell is the mean over its person-days of minutes per activity (the
HETUS estimator of minutes per day). A person-day belongs to one category of every breakdown (a
person's sex, age group and employment; the day's weekday or weekend), so one person moves each
breakdown's sums by at most max_days x 1,440 minutes (L2 <= L1 for non-negative minutes), and under
DP by max_days x the person-day's L2 bound (`clip_days`): the sensitivity the release rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.inference_data import DAYTYPES, GROUPS, Sample

Cell = tuple[str, str]


def layout(groups: list[str], available: list[str]) -> list[Cell]:
    """The cells published, in a fixed order both sides of the federation compute alike."""
    cells: list[Cell] = [("all", "all")]
    for g in groups:
        if g in available:
            cells += [(g, c) for c in (DAYTYPES if g == "daytype" else GROUPS[g])]
    return cells


def partitions(cells: list[Cell]) -> int:
    """Breakdowns released (the overall cell is one): sensitivities grow with their square root."""
    return len({g for g, _ in cells})


@dataclass(frozen=True)
class PersonDays:
    of_window: np.ndarray  # person-day index of each window, -1 beyond a person's max_days
    person: np.ndarray  # person of each person-day
    weekend: np.ndarray  # of each person-day
    count: int


def person_days(sample: Sample, max_days: int) -> PersonDays:
    """Each person's first `max_days` days (by day number) become person-days; later days drop out."""
    key = sample.person.astype(np.int64) * 1_000_000 + sample.day.astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    pd_person = uniq // 1_000_000
    rank = np.arange(len(uniq)) - np.searchsorted(pd_person, pd_person)  # uniq is sorted by person, then day
    keep = rank < max_days
    new_index = np.full(len(uniq), -1)
    new_index[keep] = np.arange(keep.sum())
    weekend = np.zeros(len(uniq), np.int64)
    weekend[inverse] = sample.weekend
    return PersonDays(new_index[inverse], pd_person[keep], weekend[keep], int(keep.sum()))


def membership(sample: Sample, days: PersonDays, cells: list[Cell]) -> np.ndarray:
    """[person-days, cells]: which cells each person-day counts in."""
    out = np.zeros((days.count, len(cells)), dtype=np.float64)
    for j, (g, c) in enumerate(cells):
        if g == "all":
            out[:, j] = 1
        elif g == "daytype":
            out[:, j] = days.weekend == DAYTYPES.index(c)
        else:
            out[:, j] = sample.groups[g][days.person] == GROUPS[g].index(c)
    return out


def per_person_day(values: np.ndarray, days: PersonDays, l2_bound: float | None = None) -> np.ndarray:
    """[person-days, K]: window values (e.g. minutes per label) summed per person-day; with an
    `l2_bound`, each person-day's vector is scaled down to at most that L2 norm (`clip_days`)."""
    out = np.zeros((days.count, values.shape[1]))
    kept = days.of_window >= 0
    np.add.at(out, days.of_window[kept], values[kept])
    return out if l2_bound is None else clip_days(out, l2_bound)


def clip_days(per_day: np.ndarray, l2_bound: float) -> np.ndarray:
    """Each person-day's minute vector scaled down to L2 norm <= `l2_bound`. A day's minutes have L2
    norm at most their sum (1,440), reached only when one activity fills the day; typical days sit
    far below (about 690 in the simulated diaries), so a bound below the day cuts the DP release's
    noise by day / bound while touching few days. Scaling keeps a day's profile: a clipped day only
    weighs a little less in its cell's ratio (the release derives person-days from the minutes)."""
    if not l2_bound > 0:
        raise ValueError(f"a person-day's L2 bound must be positive, got {l2_bound}")
    norm = np.linalg.norm(per_day, axis=1, keepdims=True)
    return per_day * np.minimum(1.0, l2_bound / np.maximum(norm, 1e-300))


def cell_sums(per_day: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S [cells, K] summed minutes, N [cells] person-days)."""
    return member.T @ per_day, member.sum(axis=0)


def cell_persons(sample: Sample, days: PersonDays, member: np.ndarray, per_day: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per person and cell: (person-days [persons, cells], summed per-day values [persons, cells, K]);
    persons are the sampling units of the prediction-powered estimate (ppi.py)."""
    n = sample.persons
    d = np.zeros((n, member.shape[1]))
    v = np.zeros((n, member.shape[1], per_day.shape[1]))
    np.add.at(d, days.person, member)
    np.add.at(v, days.person, member[:, :, None] * per_day[:, None, :])
    return d, v

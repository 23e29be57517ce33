"""Sample time-use diaries: 144 ten-minute slots a day, activities in spells.

Each person-day draws a stratum (day type from employment and weekday, sport and TV today) and then
walks the calibrated spell chain of that stratum, shifted by the person's chronotype. The loop is
over the 144 slots only; every step is vectorised over all person-days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import facts
from .calibration import STRATA, DayTables
from .population import EMPLOYED, STUDENT, Persons
from .profiles import DAY_TYPES, P_STUDY_WEEKDAY, P_WORK_WEEKDAY, P_WORK_WEEKEND
from ..schema import SLOTS_PER_DAY


@dataclass
class Diaries:
    person: np.ndarray  # (n_days,) index into the NSO's persons
    day: np.ndarray  # (n_days,) diary day number of that person
    day_of_week: np.ndarray  # (n_days,) 0 = Monday
    day_type: np.ndarray  # (n_days,) index into DAY_TYPES
    activity: np.ndarray  # (n_days, SLOTS_PER_DAY) activity codes, int8


def _day_types(rng: np.random.Generator, employment: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    u = rng.random(len(employment))
    works = np.where(weekday, u < P_WORK_WEEKDAY, u < P_WORK_WEEKEND) & (employment == EMPLOYED)
    studies = weekday & (employment == STUDENT) & (u < P_STUDY_WEEKDAY)
    other = np.where(weekday, DAY_TYPES.index("weekday_other"), DAY_TYPES.index("weekend"))
    return np.where(works, DAY_TYPES.index("work"), np.where(studies, DAY_TYPES.index("study"), other))


def sample_diaries(rng: np.random.Generator, persons: Persons, days_per_person: int, tables: DayTables) -> Diaries:
    n = len(persons)
    person = np.repeat(np.arange(n), days_per_person)
    day = np.tile(np.arange(days_per_person), n)
    first = rng.integers(0, 7, size=n)
    dow = (first[person] + day) % 7
    day_type = _day_types(rng, persons.employment[person], dow < 5)
    sport = rng.random(len(person)) < facts.SPORT_PARTICIPATION
    tv = rng.random(len(person)) < facts.TV_PARTICIPATION
    stratum_of = {s: i for i, s in enumerate(STRATA)}
    lookup = np.zeros((len(DAY_TYPES), 2, 2), dtype=np.int64)
    for (d, s, t), i in stratum_of.items():
        lookup[d, s, t] = i
    stratum = lookup[day_type, sport.astype(int), tv.astype(int)]
    shift = persons.chronotype[person]

    m = len(person)
    out = np.empty((m, SLOTS_PER_DAY), dtype=np.int8)
    idx = np.clip(0 - shift, 0, SLOTS_PER_DAY - 1)
    cur = (rng.random(m)[:, None] > tables.redraw_cdf[stratum, idx]).sum(axis=1)
    out[:, 0] = cur
    last = tables.redraw_cdf.shape[2] - 1
    for t in range(1, SLOTS_PER_DAY):
        idx = np.clip(t - shift, 0, SLOTS_PER_DAY - 1)
        leave = rng.random(m) >= tables.stay[stratum, idx, cur]
        li = np.nonzero(leave)[0]
        cdf = tables.redraw_cdf[stratum[li], idx[li]]
        cur[li] = np.minimum((rng.random(len(li))[:, None] > cdf).sum(axis=1), last)
        out[:, t] = cur
    return Diaries(person=person, day=day, day_of_week=dow, day_type=day_type, activity=out)

"""Country behaviour profiles: when people sleep, eat, work and watch TV, and how many minutes.

The fact sheet gives minutes per day and a few tempogram points; the rest of a day's shape comes
from smooth time-of-day curves with country parameters (meal and TV times, wake-up time). A single
`heterogeneity` knob pulls every country towards the cross-country mean, so sweeps can vary how
non-IID the NSOs are while 1.0 reproduces the published differences.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from .. import facts
from ..schema import ACTIVITIES, ACTIVITY_INDEX, DAY_START_HOUR, NUM_CLASSES, SLOTS_PER_DAY

DAY_TYPES: tuple[str, ...] = ("work", "study", "weekday_other", "weekend")


@dataclass(frozen=True)
class CountryProfile:
    """Numeric behaviour parameters of one country (hours are clock hours, 24+ = after midnight)."""

    wake: float
    bed: float
    lunch: float
    lunch_weight: float
    dinner: float
    dinner_weight: float
    tv_peak: float
    work_start: float
    work_end: float
    sunrise: float
    sunset: float
    eat_out_share: float  # share of eating spells away from home
    employed_share: float = 0.0
    student_share: float = 0.0


_PROFILES: dict[str, CountryProfile] = {
    "DE": CountryProfile(6.6, 22.9, 12.4, 1.0, 18.8, 0.8, 20.4, 7.7, 16.8, 6.5, 19.5, 0.15),
    "FR": CountryProfile(6.9, 23.1, 12.6, 1.9, 20.0, 2.1, 21.0, 8.4, 17.8, 7.0, 20.0, 0.25),
    "IT": CountryProfile(6.8, 23.3, 13.1, 2.3, 20.2, 2.3, 21.4, 8.2, 17.6, 6.8, 19.8, 0.20),
    "ES": CountryProfile(7.6, 24.0, 14.6, 2.0, 21.6, 1.6, 22.2, 8.6, 18.8, 7.5, 20.6, 0.25),
    "PL": CountryProfile(6.3, 22.7, 15.0, 1.3, 19.0, 0.8, 20.5, 7.2, 15.8, 6.2, 19.2, 0.10),
    "FI": CountryProfile(6.7, 22.9, 11.3, 0.9, 17.3, 0.8, 20.2, 7.8, 16.2, 5.5, 21.0, 0.15),
    "UK": CountryProfile(6.9, 23.1, 12.8, 0.8, 18.6, 1.0, 20.6, 8.3, 17.3, 6.5, 19.8, 0.15),
    "NL": CountryProfile(6.9, 23.0, 12.5, 0.8, 18.2, 1.2, 20.5, 8.2, 17.3, 6.6, 19.8, 0.12),
}

SCHOOL_DAY_STUDY_MINUTES = 300.0
P_WORK_WEEKDAY = 0.88  # employed person works on a weekday diary day
P_WORK_WEEKEND = 0.15
P_STUDY_WEEKDAY = 0.85


@dataclass(frozen=True)
class Country:
    """What the generator needs of a country after heterogeneity is applied."""

    code: str
    profile: CountryProfile
    minutes: np.ndarray  # (NUM_CLASSES,) minutes per day, sums to 1440
    anchors: list[tuple[float, tuple[str, ...], float]]


def _with_shares(code: str, minutes: dict[str, float], profile: CountryProfile) -> CountryProfile:
    work_days = minutes["employment"] / facts.WORK_MINUTES_AMONG_WORKERS
    employed = work_days / (5 / 7 * P_WORK_WEEKDAY + 2 / 7 * P_WORK_WEEKEND)
    students = minutes["study"] / SCHOOL_DAY_STUDY_MINUTES / (5 / 7 * P_STUDY_WEEKDAY)
    return replace(profile, employed_share=employed, student_share=students)


def country(code: str, heterogeneity: float = 1.0) -> Country:
    """Country parameters, moved towards the cross-country mean when heterogeneity < 1."""
    h = float(heterogeneity)
    own = facts.minutes_per_day(code)
    mean_minutes = {a: np.mean([facts.minutes_per_day(c)[a] for c in facts.COUNTRIES]) for a in ACTIVITIES}
    minutes = np.array([mean_minutes[a] + h * (own[a] - mean_minutes[a]) for a in ACTIVITIES])
    minutes *= 1440.0 / minutes.sum()

    base = _PROFILES[code]
    values = {}
    for f in fields(CountryProfile):
        if f.name in ("employed_share", "student_share"):
            continue
        mean = float(np.mean([getattr(p, f.name) for p in _PROFILES.values()]))
        values[f.name] = mean + h * (getattr(base, f.name) - mean)
    profile = _with_shares(code, dict(zip(ACTIVITIES, minutes)), CountryProfile(**values))

    anchors = []
    if code in facts.TEMPOGRAM_ANCHORS:
        mean_anchor = {}
        for c, items in facts.TEMPOGRAM_ANCHORS.items():
            for hour, group, share in items:
                mean_anchor.setdefault((hour, group), []).append(share)
        for hour, group, share in facts.TEMPOGRAM_ANCHORS[code]:
            m = float(np.mean(mean_anchor[(hour, group)]))
            anchors.append((hour, group, m + h * (share - m)))
    return Country(code=code, profile=profile, minutes=minutes, anchors=anchors)


def slot_hours() -> np.ndarray:
    """Clock hour at the middle of each slot (04:05 ... 27:55)."""
    return DAY_START_HOUR + (np.arange(SLOTS_PER_DAY) + 0.5) / 6.0


def _bump(h: np.ndarray, centre: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((h - centre) / sd) ** 2)


def _rise(h: np.ndarray, at: float, width: float = 0.4) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(h - at) / width))


# Multipliers of each activity's minutes by day type, before raking to the published totals.
_DAY_TYPE_FACTORS = {
    "work": {"sleep": 0.93, "eating": 0.85, "household_family": 0.55, "voluntary_meetings": 0.5,
             "social_resting": 0.55, "sports_outdoor": 0.8, "hobbies_computing": 0.55,
             "tv_video": 0.7, "reading_radio": 0.7, "travel": 1.5},
    "study": {"sleep": 0.97, "household_family": 0.4, "social_resting": 0.8, "hobbies_computing": 1.2,
              "tv_video": 0.7, "travel": 1.3},
    "weekday_other": {},
    "weekend": {"sleep": 1.08, "eating": 1.2, "household_family": 1.2, "voluntary_meetings": 1.5,
                "social_resting": 1.7, "sports_outdoor": 1.4, "hobbies_computing": 1.3,
                "tv_video": 1.2, "reading_radio": 1.2, "travel": 1.0},
}


def day_type_factor(day_type: str) -> np.ndarray:
    factors = np.ones(NUM_CLASSES)
    for name, value in _DAY_TYPE_FACTORS[day_type].items():
        factors[ACTIVITY_INDEX[name]] = value
    factors[ACTIVITY_INDEX["employment"]] = 1.0 if day_type == "work" else 0.0
    factors[ACTIVITY_INDEX["study"]] = 1.0 if day_type == "study" else 0.0
    return factors


def shape_curves(p: CountryProfile, day_type: str) -> np.ndarray:
    """Relative time-of-day propensity of each activity, (SLOTS_PER_DAY, NUM_CLASSES)."""
    h = slot_hours()
    wake = p.wake + {"work": -0.3, "study": -0.1, "weekday_other": 0.4, "weekend": 1.0}[day_type]
    bed = p.bed + (0.5 if day_type == "weekend" else 0.0)
    awake = _rise(h, wake, 0.35) * (1.0 - _rise(h, bed, 0.35)) + 0.01
    f = np.zeros((SLOTS_PER_DAY, NUM_CLASSES))
    A = ACTIVITY_INDEX
    f[:, A["sleep"]] = (1.0 - _rise(h, wake, 0.35)) + _rise(h, bed, 0.35) + 0.01 + 0.03 * _bump(h, 14.5, 0.8)
    f[:, A["eating"]] = awake * (0.6 * _bump(h, wake + 0.6, 0.4) + p.lunch_weight * _bump(h, p.lunch, 0.55)
                                 + p.dinner_weight * _bump(h, p.dinner, 0.6) + 0.05)
    f[:, A["personal_care"]] = awake * (1.2 * _bump(h, wake + 0.3, 0.4) + 0.7 * _bump(h, bed - 0.4, 0.4) + 0.12)
    work = _rise(h, p.work_start, 0.35) * (1.0 - _rise(h, p.work_end, 0.5)) * (1.0 - 0.6 * _bump(h, p.lunch, 0.5))
    f[:, A["employment"]] = work + 0.003
    f[:, A["study"]] = _rise(h, 8.2, 0.3) * (1.0 - _rise(h, 15.0, 0.6)) * (1.0 - 0.5 * _bump(h, p.lunch, 0.5)) + 0.02 * awake
    f[:, A["household_family"]] = awake * (1.0 * _bump(h, 10.0, 1.5) + 0.6 * _bump(h, p.lunch - 0.8, 0.6)
                                           + 0.9 * _bump(h, p.dinner - 1.2, 1.0) + 0.2)
    f[:, A["voluntary_meetings"]] = awake * (_bump(h, 11.0, 2.0) + _bump(h, 19.0, 1.5) + 0.05)
    f[:, A["social_resting"]] = awake * (0.6 * _bump(h, 15.5, 2.0) + 0.8 * _bump(h, p.dinner + 1.8, 1.5) + 0.1)
    f[:, A["sports_outdoor"]] = awake * (0.6 * _bump(h, 9.5, 1.2) + 1.0 * _bump(h, 17.5, 1.5) + 0.05)
    f[:, A["hobbies_computing"]] = awake * (0.5 * _bump(h, 15.0, 2.5) + 1.0 * _bump(h, bed - 1.5, 1.2) + 0.05)
    f[:, A["tv_video"]] = awake * (0.15 * _bump(h, p.lunch + 0.7, 0.7) + 1.0 * _bump(h, p.tv_peak, 1.1) + 0.03)
    f[:, A["reading_radio"]] = awake * (0.5 * _bump(h, wake + 1.0, 0.8) + 0.6 * _bump(h, bed - 0.6, 0.6) + 0.15)
    if day_type == "work":
        travel = 1.2 * _bump(h, p.work_start - 0.4, 0.35) + 1.0 * _bump(h, p.work_end + 0.3, 0.5)
    elif day_type == "study":
        travel = 1.2 * _bump(h, 7.8, 0.3) + 1.0 * _bump(h, 15.3, 0.5)
    else:
        travel = np.zeros_like(h)
    f[:, A["travel"]] = awake * (travel + 0.3 * _bump(h, 11.0, 2.0) + 0.4 * _bump(h, 17.5, 2.0) + 0.03)
    return f

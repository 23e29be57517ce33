"""Calibrate per-stratum diary tables so that a country's simulated days match the fact sheet.

A person-day belongs to a stratum: day type (work, study, other weekday, weekend) x sport today
(yes/no) x TV today (yes/no). The strata reproduce the published participation rates (share who
work, do sport, watch TV) that a single average day cannot. Iterative proportional fitting first
splits the published minutes over strata (each stratum sums to 1440 minutes, the population mix of
strata sums to the published minutes), then fits a slot-by-activity probability table per stratum
whose rows sum to one, whose columns give the stratum minutes, and whose population mix hits the
published tempogram points. Diaries are then sampled from these tables (diaries.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import facts
from .population import chronotype_distribution
from .profiles import (
    DAY_TYPES,
    P_STUDY_WEEKDAY,
    P_WORK_WEEKDAY,
    P_WORK_WEEKEND,
    Country,
    country,
    day_type_factor,
    shape_curves,
)
from ..schema import ACTIVITY_INDEX, DAY_START_HOUR, NUM_CLASSES, SLOTS_PER_DAY

SPORT = ACTIVITY_INDEX["sports_outdoor"]
TV = ACTIVITY_INDEX["tv_video"]
STRATA: tuple[tuple[int, int, int], ...] = tuple(
    (d, s, t) for d in range(len(DAY_TYPES)) for s in (0, 1) for t in (0, 1)
)

# Mean spell length in slots; persistence = 1 - 1/length (spells, not independent slots).
_SPELL_SLOTS = {
    "sleep": 40, "eating": 3, "personal_care": 2.5, "employment": 18, "study": 12,
    "household_family": 4, "voluntary_meetings": 6, "social_resting": 6, "sports_outdoor": 6,
    "hobbies_computing": 6, "tv_video": 8, "reading_radio": 4, "travel": 2.5,
}
PERSISTENCE = np.array([1.0 - 1.0 / _SPELL_SLOTS[a] for a in ACTIVITY_INDEX])


@dataclass(frozen=True)
class DayTables:
    """Everything the diary sampler needs for one country."""

    country: Country
    probs: np.ndarray  # (n_strata, SLOTS, CLASSES) share in each activity per slot
    stay: np.ndarray  # (n_strata, SLOTS, CLASSES) probability to continue the current spell
    redraw_cdf: np.ndarray  # (n_strata, SLOTS, CLASSES) cumulative distribution of the next activity
    stratum_minutes: np.ndarray  # (n_strata, CLASSES)


def day_type_probabilities(employed: float, student: float) -> dict[str, float]:
    """Population shares of day types implied by employment and student shares."""
    work = employed * (5 / 7 * P_WORK_WEEKDAY + 2 / 7 * P_WORK_WEEKEND)
    study = student * 5 / 7 * P_STUDY_WEEKDAY
    weekend = 2 / 7 * (1.0 - employed * P_WORK_WEEKEND)
    return {"work": work, "study": study, "weekday_other": 1.0 - work - study - weekend, "weekend": weekend}


def stratum_weights(c: Country) -> np.ndarray:
    days = day_type_probabilities(c.profile.employed_share, c.profile.student_share)
    w = []
    for d, s, t in STRATA:
        ps = facts.SPORT_PARTICIPATION if s else 1 - facts.SPORT_PARTICIPATION
        pt = facts.TV_PARTICIPATION if t else 1 - facts.TV_PARTICIPATION
        w.append(days[DAY_TYPES[d]] * ps * pt)
    return np.array(w)


def _allocate_minutes(c: Country, weights: np.ndarray, iterations: int = 500) -> np.ndarray:
    m = np.empty((len(STRATA), NUM_CLASSES))
    for i, (d, s, t) in enumerate(STRATA):
        m[i] = c.minutes * day_type_factor(DAY_TYPES[d])
        m[i, SPORT] *= (1.0 / facts.SPORT_PARTICIPATION) if s else 0.0
        m[i, TV] *= (1.0 / facts.TV_PARTICIPATION) if t else 0.0
    for _ in range(iterations):
        m *= (1440.0 / m.sum(axis=1))[:, None]
        mix = weights @ m
        m *= np.divide(c.minutes, mix, out=np.ones_like(mix), where=mix > 0)[None, :]
    return m


def _anchor_slots(hour: float) -> tuple[np.ndarray, np.ndarray]:
    """Table rows that people are in at clock slot `hour`, with the chronotype weights.

    A person with chronotype shift k is at table row t - k at slot t, so the population share at
    a slot is a chronotype-weighted mix of neighbouring rows; the anchor is fitted on that mix.
    """
    t0 = int(round((hour - DAY_START_HOUR) * 6))
    shifts, weights = chronotype_distribution()
    return np.clip(t0 - shifts, 0, SLOTS_PER_DAY - 1), weights


def _fit_tables(c: Country, weights: np.ndarray, minutes: np.ndarray, iterations: int = 400) -> np.ndarray:
    p = np.empty((len(STRATA), SLOTS_PER_DAY, NUM_CLASSES))
    for i, (d, _, _) in enumerate(STRATA):
        p[i] = shape_curves(c.profile, DAY_TYPES[d])
    p *= (minutes > 0)[:, None, :]
    target_cols = minutes / 10.0
    anchors = [(_anchor_slots(h), np.isin(np.arange(NUM_CLASSES), [ACTIVITY_INDEX[a] for a in g]), share)
               for h, g, share in c.anchors]
    for _ in range(iterations):
        p /= p.sum(axis=2, keepdims=True)
        cols = p.sum(axis=1)
        p *= np.divide(target_cols, cols, out=np.zeros_like(cols), where=cols > 0)[:, None, :]
        for (slots, shift_w), mask, share in anchors:
            cur = np.einsum("s,t,sta->", weights, shift_w, p[:, slots][:, :, mask]) / np.einsum(
                "s,t,sta->", weights, shift_w, p[:, slots])
            p[:, slots[:, None], np.where(mask)[0][None, :]] *= share / cur
            p[:, slots[:, None], np.where(~mask)[0][None, :]] *= (1 - share) / (1 - cur)
    p /= p.sum(axis=2, keepdims=True)
    return p


def _chain(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spell persistence and redraw distributions that keep each slot's marginal exactly p.

    Continuing the spell of activity b has probability min(persistence_b, p_t(b) / p_t-1(b)), so a
    falling share forces people out; the leavers redraw from what the marginal still lacks.
    """
    prev = np.concatenate([p[:, :1], p[:, :-1]], axis=1)
    ratio = np.divide(p, prev, out=np.zeros_like(p), where=prev > 0)
    stay = np.minimum(PERSISTENCE[None, None, :], ratio)
    stay[:, 0, :] = PERSISTENCE
    need = np.clip(p - stay * prev, 0.0, None)
    need[:, 0, :] = p[:, 0, :]
    need /= need.sum(axis=2, keepdims=True)
    cdf = np.cumsum(need, axis=2)
    cdf[..., -1] = 1.0
    return stay, cdf


@lru_cache(maxsize=64)
def day_tables(code: str, heterogeneity: float = 1.0) -> DayTables:
    """Calibrated diary tables of one country (cached: a few ms, reused by every generation)."""
    c = country(code, heterogeneity)
    w = stratum_weights(c)
    minutes = _allocate_minutes(c, w)
    p = _fit_tables(c, w, minutes)
    stay, cdf = _chain(p)
    return DayTables(country=c, probs=p, stay=stay, redraw_cdf=cdf, stratum_minutes=minutes)

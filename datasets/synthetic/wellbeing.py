"""Momentary well-being on the ATUS 0-6 "happy" scale.

Latent happiness = person effect + activity effect + slot noise, rounded and clipped to 0..6 like
an ATUS rating. The activity effects follow the DRM U-index ordering (commuting and work least
pleasant, socialising and TV more); the person effect carries about half the variance (ATUS ICC
0.51). The latent mean and spread are solved so the rated scale has the published mean and SD.
"""

from __future__ import annotations

from functools import lru_cache
from math import erf, sqrt

import numpy as np

from .. import facts
from ..schema import ACTIVITY_INDEX, NUM_CLASSES

ACTIVITY_EFFECT = np.zeros(NUM_CLASSES)
for _name, _effect in {
    "travel": -0.55, "employment": -0.45, "study": -0.30, "household_family": -0.25,
    "voluntary_meetings": 0.10, "social_resting": 0.35, "tv_video": 0.10, "eating": 0.35,
    "sports_outdoor": 0.45, "hobbies_computing": 0.20, "reading_radio": 0.20,
}.items():
    ACTIVITY_EFFECT[ACTIVITY_INDEX[_name]] = _effect
NOT_RATED = np.array([ACTIVITY_INDEX[a] for a in facts.NOT_RATED])
# Centre the effects on rated time (mean minutes over the countries), so the overall mean is ATUS's.
_rated_minutes = np.array([np.mean([facts.minutes_per_day(c)[a] for c in facts.COUNTRIES]) for a in ACTIVITY_INDEX])
_rated_minutes[NOT_RATED] = 0.0
ACTIVITY_EFFECT -= float(_rated_minutes @ ACTIVITY_EFFECT / _rated_minutes.sum())
LATENT_ICC = 0.55  # rounding and clipping at 6 dilute the person share a little


def _rated_moments(mu: float, sd: float) -> tuple[float, float]:
    """Mean and SD of clip(round(N(mu, sd)), 0, 6)."""
    cdf = lambda x: 0.5 * (1 + erf((x - mu) / (sd * sqrt(2))))  # noqa: E731
    edges = [-np.inf, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, np.inf]
    p = np.array([cdf(b) - cdf(a) for a, b in zip(edges[:-1], edges[1:])])
    k = np.arange(7)
    m = float(p @ k)
    return m, float(np.sqrt(p @ (k - m) ** 2))


@lru_cache(maxsize=1)
def latent_scale() -> tuple[float, float]:
    """Latent mean and SD whose rounded, clipped rating has the ATUS mean and SD (Newton steps)."""
    mu, sd = facts.WELLBEING_MEAN, facts.WELLBEING_SD
    for _ in range(50):
        m, s = _rated_moments(mu, sd)
        mu += facts.WELLBEING_MEAN - m
        sd *= facts.WELLBEING_SD / s
    return mu, sd


def person_sd() -> float:
    return float(np.sqrt(LATENT_ICC) * latent_scale()[1])


def wellbeing(rng: np.random.Generator, activity: np.ndarray, mood: np.ndarray) -> np.ndarray:
    """Rated well-being per window; NaN for activities ATUS does not rate."""
    mu, sd = latent_scale()
    within_var = (1 - LATENT_ICC) * sd**2
    act_var = float(np.var(ACTIVITY_EFFECT))
    noise_sd = np.sqrt(max(within_var - act_var, 0.05))
    latent = mu + mood + ACTIVITY_EFFECT[activity] + noise_sd * rng.standard_normal(len(activity))
    rated = np.clip(np.rint(latent), 0, 6).astype(np.float32)
    rated[np.isin(activity, NOT_RATED)] = np.nan
    return rated

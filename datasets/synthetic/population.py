"""Persons of one NSO: observed attributes and the hidden person effects that drive their data.

Person effects (activity level, fitness, chronotype, mood) are what make windows of one person
correlated, which is why splits are by person and why person-level privacy matters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .profiles import CountryProfile
from ..schema import AGE_GROUPS, DEVICES, EMPLOYMENT

EMPLOYED, STUDENT, NOT_EMPLOYED = (EMPLOYMENT.index(x) for x in ("employed", "student", "not_employed"))
AGE_GROUP_SHARES = np.array([0.14, 0.33, 0.33, 0.20])
AGE_BOUNDS = ((15, 24), (25, 44), (45, 64), (65, 85))

# Devices used by each NSO's survey (shares over DEVICES): a real calibration difference.
DEVICE_MIX: dict[str, tuple[float, float, float]] = {
    "DE": (0.0, 0.4, 0.6), "FR": (1.0, 0.0, 0.0), "IT": (0.5, 0.5, 0.0), "ES": (0.0, 1.0, 0.0),
    "PL": (0.3, 0.7, 0.0), "FI": (1.0, 0.0, 0.0), "UK": (0.0, 0.0, 1.0), "NL": (0.0, 0.5, 0.5),
}


CHRONOTYPE_SD = 1.5  # slots (15 minutes): how much persons' daily schedules are shifted
CHRONOTYPE_MAX = 4


def chronotype_distribution() -> tuple[np.ndarray, np.ndarray]:
    """Support and probabilities of the (rounded, clipped normal) chronotype shift."""
    from math import erf, sqrt

    shifts = np.arange(-CHRONOTYPE_MAX, CHRONOTYPE_MAX + 1)
    cdf = lambda x: 0.5 * (1 + erf(x / (CHRONOTYPE_SD * sqrt(2))))  # noqa: E731
    edges = [-np.inf] + [k + 0.5 for k in shifts[:-1]] + [np.inf]
    probs = np.array([cdf(b) - cdf(a) for a, b in zip(edges[:-1], edges[1:])])
    return shifts, probs


@dataclass
class Persons:
    """Columns of one NSO's persons; arrays of equal length."""

    age_group: np.ndarray  # int codes into AGE_GROUPS
    age: np.ndarray
    sex: np.ndarray  # 0 female, 1 male
    employment: np.ndarray  # int codes into EMPLOYMENT
    device: np.ndarray  # int codes into DEVICES
    activity_level: np.ndarray  # multiplicative movement intensity (lognormal, age-adjusted)
    hr_offset: np.ndarray  # resting heart rate offset, share of HRmax
    chronotype: np.ndarray  # shift of the daily schedule, slots
    mood: np.ndarray  # person effect on well-being, scale points
    active_travel: np.ndarray  # probability a travel spell is on foot or by bike
    manual_job: np.ndarray  # bool: physically active job
    outdoor_light: np.ndarray  # log10 lux offset (indoor lighting, time outdoors)

    def __len__(self) -> int:
        return len(self.age)


def _quota(rng: np.random.Generator, n: int, probs: np.ndarray) -> np.ndarray:
    """n category codes in proportions `probs` (largest remainders), in random order."""
    exact = n * np.asarray(probs) / np.sum(probs)
    counts = np.floor(exact).astype(int)
    remainder = n - counts.sum()
    if remainder:
        counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    return rng.permutation(np.repeat(np.arange(len(probs)), counts))


def device_mix(code: str, heterogeneity: float) -> np.ndarray:
    own = np.array(DEVICE_MIX[code])
    mean = np.mean(np.array(list(DEVICE_MIX.values())), axis=0)
    mix = mean + heterogeneity * (own - mean)
    return mix / mix.sum()


def sample_persons(rng: np.random.Generator, n: int, profile: CountryProfile, devices: np.ndarray,
                   mood_sd: float) -> Persons:
    # Quota sampling, as a survey sample stratified by age and employment: the NSO's composition is
    # its country's, not a random draw around it, so small NSOs still match the published minutes.
    age_group = _quota(rng, n, AGE_GROUP_SHARES)
    lo = np.array([b[0] for b in AGE_BOUNDS])[age_group]
    hi = np.array([b[1] for b in AGE_BOUNDS])[age_group]
    age = rng.integers(lo, hi + 1)

    # Students are young, the employed mostly 25-64; overall shares match the country.
    p_student_young = min(0.9, profile.student_share / AGE_GROUP_SHARES[0])
    emp_young = 0.25 * (1.0 - p_student_young)
    emp_old = 0.05
    core = profile.employed_share - AGE_GROUP_SHARES[0] * emp_young - AGE_GROUP_SHARES[3] * emp_old
    emp_core = float(np.clip(core / (AGE_GROUP_SHARES[1] + AGE_GROUP_SHARES[2]), 0.0, 0.95))
    employment = np.full(n, NOT_EMPLOYED)
    for g, shares in enumerate([(emp_young, p_student_young), (emp_core, 0.0), (emp_core, 0.0), (emp_old, 0.0)]):
        members = np.flatnonzero(age_group == g)
        probs = np.array([shares[0], shares[1], 1.0 - shares[0] - shares[1]])
        employment[members] = _quota(rng, len(members), probs)

    decade = (age - 50.0) / 10.0
    # UK Biobank: ENMO falls 2.35 mg per decade from about 31 mg; between-person SD 7-10 mg.
    activity_level = np.exp(0.2 * rng.standard_normal(n)) * (1.0 - 0.075 * decade)
    return Persons(
        age_group=age_group,
        age=age,
        sex=rng.integers(0, 2, size=n),
        employment=employment,
        device=rng.choice(len(DEVICES), size=n, p=devices),
        activity_level=activity_level.clip(0.3, None),
        hr_offset=0.04 * rng.standard_normal(n),
        chronotype=np.clip(np.round(CHRONOTYPE_SD * rng.standard_normal(n)), -CHRONOTYPE_MAX, CHRONOTYPE_MAX).astype(np.int64),
        mood=mood_sd * rng.standard_normal(n),
        active_travel=rng.beta(2.0, 4.0, size=n),
        manual_job=rng.random(n) < 0.3,
        outdoor_light=0.15 * rng.standard_normal(n),
    )


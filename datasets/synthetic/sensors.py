"""Wearable and smartphone features of each 10-minute slot, from activity, person and device.

Intensities are set on the ActiGraph ENMO scale and then read through each device's calibration,
so NSOs with different devices see genuinely shifted features (Hildebrand cut-points, Bakrania
2016). Effects are drawn per spell (a run is a run for its whole spell), per person and per slot.
Sedentary activities at home (TV, reading, hobbies, resting) overlap on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import facts
from .population import Persons
from .profiles import CountryProfile, slot_hours
from ..schema import ACTIVITY_INDEX, DEVICES, LOCATIONS, NUM_CLASSES

A = ACTIVITY_INDEX
HOME, WORK, OTHER, OUTDOOR, VEHICLE = range(len(LOCATIONS))


def _per_activity(values: dict[str, float], default: float = 0.0) -> np.ndarray:
    out = np.full(NUM_CLASSES, default, dtype=np.float64)
    for k, v in values.items():
        out[A[k]] = v
    return out


# ENMO on the ActiGraph scale for a 50-year-old of average activity level, milli-g.
ENMO_BASE = _per_activity({
    "sleep": 4.0, "eating": 24.0, "personal_care": 46.0, "employment": 24.0, "study": 22.0,
    "household_family": 62.0, "voluntary_meetings": 48.0, "social_resting": 26.0,
    "sports_outdoor": 190.0, "hobbies_computing": 23.0, "tv_video": 16.0, "reading_radio": 15.0,
    "travel": 30.0,
})
ENMO_CV = _per_activity({
    "sleep": 0.8, "eating": 0.9, "personal_care": 1.1, "employment": 0.9, "study": 0.8,
    "household_family": 1.2, "voluntary_meetings": 1.0, "social_resting": 0.9, "sports_outdoor": 0.7,
    "hobbies_computing": 0.75, "tv_video": 0.8, "reading_radio": 0.7, "travel": 0.9,
})
SPELL_SD = _per_activity({"sports_outdoor": 0.45, "travel": 0.3, "household_family": 0.3}, default=0.2)
MOVING_SHARE = _per_activity({
    "sleep": 0.002, "eating": 0.04, "personal_care": 0.12, "employment": 0.04, "study": 0.03,
    "household_family": 0.2, "voluntary_meetings": 0.12, "social_resting": 0.05,
    "sports_outdoor": 0.3, "hobbies_computing": 0.02, "tv_video": 0.015, "reading_radio": 0.01,
    "travel": 0.03,
})
# Heart rate above the person's resting rate, beats per minute.
HR_DELTA = _per_activity({
    "sleep": -8, "eating": 16, "personal_care": 22, "employment": 12, "study": 10,
    "household_family": 38, "voluntary_meetings": 25, "social_resting": 13, "sports_outdoor": 55,
    "hobbies_computing": 10, "tv_video": 8, "reading_radio": 6, "travel": 12,
})
# Location type shares per activity (home, work, other indoor, outdoor, vehicle).
LOCATION_SHARES = np.array([
    [1.00, 0.00, 0.00, 0.00, 0.00],  # sleep
    [0.80, 0.08, 0.12, 0.00, 0.00],  # eating (eating out set per country)
    [0.97, 0.01, 0.02, 0.00, 0.00],  # personal care
    [0.15, 0.80, 0.03, 0.02, 0.00],  # employment (manual jobs set below)
    [0.15, 0.00, 0.85, 0.00, 0.00],  # study
    [0.85, 0.00, 0.10, 0.05, 0.00],  # household and family care
    [0.10, 0.00, 0.75, 0.15, 0.00],  # voluntary work and meetings
    [0.55, 0.00, 0.30, 0.15, 0.00],  # social life and resting
    [0.05, 0.00, 0.35, 0.60, 0.00],  # sports and outdoor
    [0.90, 0.00, 0.07, 0.03, 0.00],  # hobbies and computing
    [0.97, 0.00, 0.03, 0.00, 0.00],  # TV and video
    [0.90, 0.00, 0.05, 0.02, 0.03],  # reading and radio
    [0.00, 0.00, 0.00, 0.00, 1.00],  # travel (active travel set below)
])
# Device calibration: reading = f(true ActiGraph-scale ENMO), piecewise linear in log space through
# the published cut-point pairs; GENEActiv reads higher at low intensity (Bakrania 2016).
_CUTS_TRUE = np.array([1.0, 5.0, *facts.ENMO_CUTPOINTS["actigraph"], 3000.0])
_GENEACTIV = np.array([2.0, 7.0, *facts.ENMO_CUTPOINTS["geneactiv"], 3000.0 * 418.3 / 428.8])
DEVICE_READING = {
    "actigraph": _CUTS_TRUE,
    "geneactiv": _GENEACTIV,
    "axivity": _GENEACTIV * 0.97,
}
DEVICE_NONWEAR = {"actigraph": 0.02, "geneactiv": 0.03, "axivity": 0.04}


@dataclass
class SensorInputs:
    activity: np.ndarray  # (n,) activity code of each window
    person: np.ndarray  # (n,) person index
    slot: np.ndarray  # (n,) slot of the day
    spell: np.ndarray  # (n,) spell number, increasing; windows of one spell share it


def device_reading(device: str, true_enmo: np.ndarray) -> np.ndarray:
    """What `device` reports for a true ActiGraph-scale ENMO (exported for tests and docs)."""
    return np.exp(np.interp(np.log(np.maximum(true_enmo, 1e-3)), np.log(_CUTS_TRUE),
                            np.log(DEVICE_READING[device])))


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(len(probs))[:, None] > cdf).sum(axis=1), probs.shape[1] - 1)


@dataclass
class _Spells:
    """Per-window and per-spell quantities that every sensor block reads."""

    act: np.ndarray  # activity of each window
    p: np.ndarray  # person of each window
    spell: np.ndarray  # spell of each window
    spell_act: np.ndarray
    spell_person: np.ndarray
    active_travel: np.ndarray  # per spell: walking or cycling travel
    bike: np.ndarray
    sport_kind: np.ndarray  # per spell: 0 run, 1 walk, 2 other
    is_sport: np.ndarray
    manual: np.ndarray  # per spell: manual work
    walking: np.ndarray  # per window
    running: np.ndarray  # per window

    @property
    def n(self) -> int:
        return len(self.act)

    @property
    def n_spells(self) -> int:
        return len(self.spell_act)


def _spells(rng: np.random.Generator, x: SensorInputs, persons: Persons) -> _Spells:
    """Spell-level kinds: travel mode, sport type, manual work."""
    act = x.activity.astype(np.intp)
    n_spells = int(x.spell[-1]) + 1 if len(act) else 0
    first = np.r_[0, np.nonzero(np.diff(x.spell))[0] + 1]  # first window of each spell
    spell_act, spell_person = act[first], x.person[first]
    active_travel = (spell_act == A["travel"]) & (rng.random(n_spells) < persons.active_travel[spell_person])
    bike = active_travel & (rng.random(n_spells) < 0.3)
    sport_kind = _categorical(rng, np.tile([0.3, 0.45, 0.25], (n_spells, 1)))  # run, walk, other
    is_sport = spell_act == A["sports_outdoor"]
    manual = (spell_act == A["employment"]) & persons.manual_job[spell_person]
    walk_spell = (active_travel & ~bike) | (is_sport & (sport_kind == 1))
    run_spell = is_sport & (sport_kind == 0)
    return _Spells(act, x.person, x.spell, spell_act, spell_person, active_travel, bike, sport_kind, is_sport,
                   manual, walk_spell[x.spell], run_spell[x.spell])


def _location(rng: np.random.Generator, s: _Spells, profile: CountryProfile) -> np.ndarray:
    loc_p = LOCATION_SHARES[s.spell_act].copy()
    eat_out = profile.eat_out_share
    loc_p[s.spell_act == A["eating"]] = [1 - eat_out, 0.4 * eat_out, 0.6 * eat_out, 0.0, 0.0]
    loc_p[s.manual] = [0.05, 0.6, 0.1, 0.25, 0.0]
    loc_p[s.active_travel] = [0.0, 0.0, 0.0, 1.0, 0.0]
    return _categorical(rng, loc_p)[s.spell]


def _enmo(rng: np.random.Generator, s: _Spells, persons: Persons) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ENMO mean, SD and 90th percentile: activity x spell x person x slot, then the device reading."""
    n, n_spells, act = s.n, s.n_spells, s.act
    spell_base = ENMO_BASE[s.spell_act] * np.exp(SPELL_SD[s.spell_act] * rng.standard_normal(n_spells))
    spell_base = np.where(s.manual, 80.0 * np.exp(0.3 * rng.standard_normal(n_spells)), spell_base)
    spell_base = np.where(s.active_travel & ~s.bike, 120.0 * np.exp(0.25 * rng.standard_normal(n_spells)), spell_base)
    spell_base = np.where(s.bike, 90.0 * np.exp(0.3 * rng.standard_normal(n_spells)), spell_base)
    kind_scale = np.array([2.2, 0.65, 0.8])
    spell_base = np.where(s.is_sport, spell_base * kind_scale[s.sport_kind], spell_base)
    level = persons.activity_level[s.p]
    true_enmo = spell_base[s.spell] * np.where(act == A["sleep"], 1.0, level) * np.exp(0.25 * rng.standard_normal(n))
    cv = ENMO_CV[act] * np.exp(0.15 * rng.standard_normal(n))
    enmo = np.empty(n)
    for d, name in enumerate(DEVICES):
        on = persons.device[s.p] == d
        enmo[on] = device_reading(name, true_enmo[on])
    enmo *= np.exp(0.05 * rng.standard_normal(n))
    enmo_sd = enmo * cv
    return enmo, enmo_sd, enmo + 1.28 * enmo_sd * np.exp(0.15 * rng.standard_normal(n))


def _steps(rng: np.random.Generator, s: _Spells, persons: Persons) -> tuple[np.ndarray, np.ndarray]:
    """Step rate and peak cadence: share of minutes stepping and cadence while stepping."""
    n, norm = s.n, rng.standard_normal
    moving = MOVING_SHARE[s.act] * np.exp(0.5 * norm(n))
    cadence = 85.0 + 12.0 * norm(n)
    moving = np.where(s.walking | s.running, np.clip(0.85 + 0.07 * norm(n), 0.4, 1.0), moving)
    moving = np.where(s.manual[s.spell], 0.25 * np.exp(0.4 * norm(n)), moving)
    cadence = np.where(s.walking, 108.0 + 9.0 * norm(n), cadence)
    cadence = np.where(s.running, 168.0 + 10.0 * norm(n), cadence)
    cadence -= 0.25 * (persons.age[s.p] - 50.0)
    moving = np.clip(moving, 0.0, 1.0)
    cadence = np.clip(cadence, 40.0, 220.0)
    peak = np.where(moving * 10 >= 0.5, np.clip(cadence * (1 + 0.05 * norm(n)), 0, 240), 0.0)
    return moving * cadence, peak


def _heart_rate(rng: np.random.Generator, s: _Spells, persons: Persons) -> np.ndarray:
    """Heart rate as a share of the age-predicted maximum."""
    hr_delta = HR_DELTA[s.act].copy()
    hr_delta = np.where(s.manual[s.spell], 35.0, hr_delta)
    hr_delta = np.where(s.walking, 50.0, hr_delta)
    hr_delta = np.where(s.bike[s.spell], 62.0, hr_delta)
    hr_delta = np.where(s.running, 95.0, hr_delta)
    rest = 65.0 + 180.0 * persons.hr_offset[s.p]  # resting bpm; person effect SD about 7 bpm
    hr = (rest + hr_delta * np.exp(0.1 * rng.standard_normal(s.n)) + 3.0 * rng.standard_normal(s.n)) \
        / (220.0 - persons.age[s.p])
    return np.clip(hr, 0.15, 1.0)


def _light(rng: np.random.Generator, s: _Spells, persons: Persons, profile: CountryProfile, slot: np.ndarray,
           location: np.ndarray) -> np.ndarray:
    """log10 lux: indoor lighting, daylight outdoors, a phone in a pocket reads dark."""
    hours = slot_hours()[slot]
    daylight = (hours > profile.sunrise) & (hours < profile.sunset)
    base_light = np.select(
        [s.act == A["sleep"], location == OUTDOOR, location == VEHICLE, location == HOME],
        [0.2, np.where(daylight, 3.9, 1.0), np.where(daylight, 3.2, 0.8), np.where(daylight, 2.3, 2.0)],
        default=2.6,
    )
    pocket = (rng.random(s.n_spells) < 0.2)[s.spell]
    lux = base_light + persons.outdoor_light[s.p] + 0.3 * rng.standard_normal(s.n) - 1.5 * pocket
    return np.clip(lux, 0.0, 5.5)


def _speed(rng: np.random.Generator, s: _Spells, location: np.ndarray) -> np.ndarray:
    """GPS speed, km/h."""
    n, norm = s.n, rng.standard_normal
    speed = np.abs(0.4 * norm(n))
    speed = np.where(location == VEHICLE, 35.0 * np.exp(0.5 * norm(n)), speed)
    speed = np.where(s.walking, np.abs(4.5 + 0.8 * norm(n)), speed)
    speed = np.where(s.bike[s.spell], np.abs(15.0 + 3.0 * norm(n)), speed)
    return np.where(s.running, np.abs(9.5 + 1.5 * norm(n)), speed)


def _missing(rng: np.random.Generator, s: _Spells, persons: Persons, missing_scale: float) -> dict[str, np.ndarray]:
    """Masks: wrist device off (showers, charging), PPG dropouts, phone off, phone without fix."""
    nonwear_p = np.full(s.n_spells, 0.0)
    for d, name in enumerate(DEVICES):
        nonwear_p[persons.device[s.spell_person] == d] = DEVICE_NONWEAR[name]
    nonwear_p[s.spell_act == A["personal_care"]] += 0.3
    nonwear = (rng.random(s.n_spells) < np.minimum(nonwear_p * missing_scale, 0.95))[s.spell]
    hr_gap = nonwear | (rng.random(s.n) < min(0.05 * missing_scale, 0.95))
    phone_off = (rng.random(s.n_spells) < min(0.06 * missing_scale, 0.95))[s.spell]
    no_fix = phone_off | (rng.random(s.n) < min(0.03 * missing_scale, 0.95))
    return {"nonwear": nonwear, "hr_gap": hr_gap, "phone_off": phone_off, "no_fix": no_fix}


def _masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.astype(np.float32)
    out[mask] = np.nan
    return out


def sensor_features(rng: np.random.Generator, x: SensorInputs, persons: Persons, profile: CountryProfile,
                    missing_scale: float) -> dict[str, np.ndarray]:
    """Every sensor feature of every window. The blocks draw from `rng` in a fixed order, so the
    same seed gives the same data."""
    s = _spells(rng, x, persons)
    location = _location(rng, s, profile)
    enmo, enmo_sd, enmo_p90 = _enmo(rng, s, persons)
    steps, peak = _steps(rng, s, persons)
    hr = _heart_rate(rng, s, persons)
    lux = _light(rng, s, persons, profile, x.slot, location)
    speed = _speed(rng, s, location)
    m = _missing(rng, s, persons, missing_scale)
    return {
        "enmo_mean": _masked(enmo, m["nonwear"]),
        "enmo_sd": _masked(enmo_sd, m["nonwear"]),
        "enmo_p90": _masked(enmo_p90, m["nonwear"]),
        "steps_per_min": _masked(steps, m["nonwear"]),
        "peak_cadence": _masked(peak, m["nonwear"]),
        "hr_pct_max": _masked(hr, m["hr_gap"]),
        "log10_lux": _masked(lux, m["phone_off"]),
        "location": _masked(location, m["no_fix"]),
        "speed_kmh": _masked(speed, m["no_fix"]),
    }

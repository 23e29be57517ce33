"""Simulate the NSOs' sensor datasets: persons, diaries, sensor features, well-being.

Each NSO draws from its own random stream, derived from (seed, country), so its data does not
change when other NSOs are added or removed from a config: sweeps over the number of NSOs compare
like with like.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import facts
from ..dataset import MIN_PERSONS, Dataset
from .calibration import day_tables
from .diaries import sample_diaries
from .population import device_mix, sample_persons
from ..schema import (
    ACTIVITIES,
    AGE_GROUPS,
    DEVICES,
    EMPLOYMENT,
    FEATURE_COLUMNS,
    SEXES,
    SLOTS_PER_DAY,
)
from .sensors import SensorInputs, sensor_features
from .wellbeing import person_sd, wellbeing

DEFAULT_PERSONS = {"DE": 300, "FR": 260, "UK": 260, "IT": 230, "ES": 180, "PL": 150, "NL": 110, "FI": 70}


class GeneratorSettings(BaseModel):
    """The [data.generate] section of a config: what to simulate."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, description="seed of the data; independent of the training seed")
    nsos: list[str] = Field(default_factory=lambda: list(facts.COUNTRIES), min_length=1)
    persons: dict[str, int] = Field(default_factory=dict, description="persons per NSO, overrides defaults")
    persons_scale: float = Field(1.0, gt=0, le=1000, description="multiplies the default persons per NSO")
    days_per_person: int = Field(2, ge=1, le=14)
    heterogeneity: float = Field(1.0, ge=0, le=1, description="0 = identical NSOs, 1 = published differences")
    missing_scale: float = Field(1.0, ge=0, le=10, description="multiplies every missing-value rate")

    @field_validator("nsos")
    @classmethod
    def _known_unique(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in facts.COUNTRIES]
        if unknown:
            raise ValueError(f"unknown NSO {unknown}; allowed: {', '.join(facts.COUNTRIES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"NSOs listed twice: {sorted({c for c in v if v.count(c) > 1})}")
        return v

    @model_validator(mode="after")
    def _persons(self) -> "GeneratorSettings":
        extra = sorted(set(self.persons) - set(self.nsos))
        if extra:
            raise ValueError(f"persons given for NSOs not in nsos: {extra}; nsos = {self.nsos}")
        for code, n in self.persons_per_nso().items():
            if n < MIN_PERSONS:
                raise ValueError(
                    f"NSO {code} would have {n} persons; at least {MIN_PERSONS} are needed to split "
                    "persons into train, test and held-out sets")
        return self

    def persons_per_nso(self) -> dict[str, int]:
        return {c: int(self.persons.get(c, round(DEFAULT_PERSONS[c] * self.persons_scale))) for c in self.nsos}

    def total_windows(self) -> int:
        return sum(self.persons_per_nso().values()) * self.days_per_person * SLOTS_PER_DAY


def _nso_arrays(code: str, n_persons: int, s: GeneratorSettings, stream: int = 0) -> tuple[dict, dict]:
    """Stream 0: the diary sample; stream 1: the sensor-only sample; stream 2: the population of
    replication studies (streams of their own, so asking for one changes nothing in the others)."""
    key = [s.seed, facts.COUNTRIES.index(code)] + ([stream] if stream else [])
    rng = np.random.default_rng(key)
    tables = day_tables(code, s.heterogeneity)
    persons = sample_persons(rng, n_persons, tables.country.profile, device_mix(code, s.heterogeneity), person_sd())
    diaries = sample_diaries(rng, persons, s.days_per_person, tables)

    activity = diaries.activity.reshape(-1).astype(np.int64)
    person = np.repeat(diaries.person, SLOTS_PER_DAY)
    slot = np.tile(np.arange(SLOTS_PER_DAY), len(diaries.person))
    new_spell = np.ones(len(activity), dtype=bool)
    new_spell[1:] = (activity[1:] != activity[:-1]) | (slot[1:] == 0)
    spell = np.cumsum(new_spell) - 1
    feats = sensor_features(rng, SensorInputs(activity, person, slot, spell), persons,
                            tables.country.profile, s.missing_scale)
    windows = {
        "person": person,
        "day": np.repeat(diaries.day, SLOTS_PER_DAY).astype(np.int16),
        "slot": slot.astype(np.int16),
        **feats,
        "day_of_week": np.repeat(diaries.day_of_week, SLOTS_PER_DAY).astype(np.float32),
        "activity": activity.astype(np.int8),
        "wellbeing": wellbeing(rng, activity, persons.mood[person]),
    }
    people = {
        "age_group": persons.age_group, "age": persons.age, "sex": persons.sex,
        "employment": persons.employment, "device": persons.device,
    }
    return windows, people


def generate(settings: GeneratorSettings | None = None, progress=None) -> Dataset:
    """Simulate every NSO of `settings`. `progress(code)` is called after each NSO, if given."""
    return _generate(settings or GeneratorSettings(), progress)


def generate_sensor_only(settings: GeneratorSettings, scale: float) -> Dataset:
    """Each NSO's sensor-only sample: `scale` x its diary persons from the same population, who wore
    the devices but kept no diary. Their diaries are simulated too - the truth an estimate is
    judged against - and the caller must keep them away from the estimation (datasets/inference_data.py)."""
    counts = {c: max(1, int(round(n * scale))) for c, n in settings.persons_per_nso().items()}
    return _generate(settings, None, stream=1, counts=counts, id_tag="S")


def generate_population(settings: GeneratorSettings, scale: float) -> Dataset:
    """A large independent sample of each NSO's population (`scale` x its diary persons, a stream of
    its own): the population that replication studies draw samples from and judge estimates against."""
    counts = {c: max(1, int(round(n * scale))) for c, n in settings.persons_per_nso().items()}
    return _generate(settings, None, stream=2, counts=counts, id_tag="P")


def _generate(s: GeneratorSettings, progress, stream: int = 0, counts: dict[str, int] | None = None,
              id_tag: str = "") -> Dataset:
    win_parts, person_parts = [], []
    person_ids: list[str] = []
    offset = 0
    for k, (code, n) in enumerate((counts or s.persons_per_nso()).items()):
        w, p = _nso_arrays(code, n, s, stream)
        w["nso"] = np.full(len(w["person"]), k, dtype=np.int16)
        w["person"] = w["person"] + offset
        p["nso"] = np.full(n, k, dtype=np.int16)
        p["person"] = np.arange(n) + offset
        person_ids += [f"{code}-{id_tag}{i:05d}" for i in range(n)]
        offset += n
        win_parts.append(w)
        person_parts.append(p)
        if progress:
            progress(code)
    cat = lambda codes, names: pd.Categorical.from_codes(codes, categories=list(names))  # noqa: E731
    wa = {key: np.concatenate([part[key] for part in win_parts]) for key in win_parts[0]}
    windows = pd.DataFrame({
        "nso": cat(wa["nso"], s.nsos),
        "person_id": cat(wa["person"], person_ids),
        "day": wa["day"],
        "slot": wa["slot"],
        **{c: wa[c] for c in FEATURE_COLUMNS},
        "activity": cat(wa["activity"], ACTIVITIES),
        "wellbeing": wa["wellbeing"],
    })
    pa = {key: np.concatenate([part[key] for part in person_parts]) for key in person_parts[0]}
    persons = pd.DataFrame({
        "nso": cat(pa["nso"], s.nsos),
        "person_id": cat(pa["person"], person_ids),
        "age_group": cat(pa["age_group"], AGE_GROUPS),
        "age": pa["age"].astype(np.int16),
        "sex": cat(pa["sex"], SEXES),
        "employment": cat(pa["employment"], EMPLOYMENT),
        "device": cat(pa["device"], DEVICES),
    })
    return Dataset(windows=windows, persons=persons)

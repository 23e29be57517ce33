from __future__ import annotations

import numpy as np
import pytest

from datasets.errors import UserError
from datasets.synthetic.generator import GeneratorSettings, generate
from datasets.io import fingerprint
from datasets.splits import split_persons, window_split


def test_same_seed_same_data_other_seed_other_data():
    s = GeneratorSettings(nsos=["FI", "NL"], seed=3)
    a, b = generate(s), generate(s)
    assert fingerprint(a.windows) == fingerprint(b.windows)
    assert a.windows.equals(b.windows)
    c = generate(GeneratorSettings(nsos=["FI", "NL"], seed=4))
    assert fingerprint(c.windows) != fingerprint(a.windows)


def test_an_nso_keeps_its_data_when_other_nsos_are_added():
    alone = generate(GeneratorSettings(nsos=["FI"], seed=2)).windows
    with_others = generate(GeneratorSettings(nsos=["DE", "FI"], seed=2)).windows
    fi = with_others[with_others.nso == "FI"].reset_index(drop=True)
    for col in ("enmo_mean", "hr_pct_max", "wellbeing", "slot"):
        assert np.array_equal(fi[col].to_numpy(), alone[col].to_numpy(), equal_nan=True), col
    assert (fi["activity"].astype(str) == alone["activity"].astype(str)).all()


def test_splits_are_by_person_deterministic_and_cover_every_nso(default_dataset):
    w = default_dataset.windows
    split = split_persons(w, seed=7)
    assert split.equals(split_persons(w, seed=7))
    assert not split.equals(split_persons(w, seed=8))
    labels = window_split(w, split)
    per_person = w.assign(split=labels).groupby("person_id", observed=True).split.nunique()
    assert (per_person == 1).all()  # a person's windows are on one side only
    counts = w.assign(split=labels).groupby(["nso", "split"], observed=True).person_id.nunique().unstack()
    assert (counts[["train", "test", "holdout"]] >= 1).all().all()
    total = counts.sum(axis=1)
    assert ((counts["test"] / total - 0.2).abs() < 0.03).all()
    assert ((counts["holdout"] / total - 0.1).abs() < 0.03).all()


def test_split_refuses_bad_fractions(default_dataset):
    with pytest.raises(UserError, match="must each be in"):
        split_persons(default_dataset.windows, seed=0, test_fraction=0.6, holdout_fraction=0.5)


def test_generator_settings_reject_too_few_persons_and_unknown_nsos():
    with pytest.raises(ValueError, match="at least 3 are needed"):
        GeneratorSettings(nsos=["FI"], persons={"FI": 2})
    with pytest.raises(ValueError, match="unknown NSO"):
        GeneratorSettings(nsos=["XX"])
    with pytest.raises(ValueError, match="not in nsos"):
        GeneratorSettings(nsos=["FI"], persons={"DE": 30})

"""The prediction-powered estimate (clients/estimation/ppi.py) on populations whose truth is known:
unbiased with a biased model, intervals that hold the truth at their rate over repeated samples,
and never worse than the diary sample alone."""

from __future__ import annotations

import numpy as np
import pytest

from clients.estimation.ppi import Persons, combined, ratio_estimate

MU = np.array([300.0, 500.0, 640.0])  # true mean minutes per day of three activities


def _group(rng, n, quality, bias):
    """n persons with 1-2 days; true minutes y, predictions f = quality * y + (1 - quality) * noise + bias."""
    d = rng.integers(1, 3, n).astype(float)
    y = d[:, None] * (MU + rng.normal(0, 120, (n, 3)))
    f = quality * y + (1 - quality) * d[:, None] * rng.normal(MU, 120, (n, 3)) + d[:, None] * bias
    return d, y, f


def _sample(rng, quality, bias, n_train=240, n_lab=60, n_unl=900):
    t, lab, unl = (_group(rng, n, quality, bias) for n in (n_train, n_lab, n_unl))
    return Persons(t[0], t[1]), Persons(lab[0], lab[1], lab[2]), Persons(unl[0], f=unl[2])


@pytest.mark.parametrize("quality, bias", [(0.95, 40.0), (0.0, 0.0)], ids=["good-model-biased", "useless-model"])
def test_intervals_hold_the_truth_at_their_rate_and_the_estimate_beats_the_diary_sample(quality, bias):
    rng = np.random.default_rng(7)
    held, err, err_diary = [], [], []
    for _ in range(600):
        trained, lab, unl = _sample(rng, quality, bias)
        est = combined(trained, lab, unl)
        held.append((est.low <= MU) & (MU <= est.high))
        err.append(est.minutes - MU)
        diary, _ = ratio_estimate(Persons(np.concatenate([trained.d, lab.d]), np.concatenate([trained.y, lab.y])))
        err_diary.append(diary - MU)
    coverage = np.mean(held)
    rmse, rmse_diary = np.sqrt(np.mean(np.square(err))), np.sqrt(np.mean(np.square(err_diary)))
    assert 0.93 <= coverage <= 0.97, coverage
    assert abs(np.mean(err)) < 0.15 * rmse  # no bias, although the model's predictions are biased
    if quality > 0:
        assert rmse < 0.75 * rmse_diary, (rmse, rmse_diary)  # the sensors' persons carry information
    else:
        assert rmse < 1.05 * rmse_diary, (rmse, rmse_diary)  # a useless model costs (almost) nothing


def test_a_cell_with_too_few_diary_persons_says_it_cannot_be_estimated():
    one = Persons(np.ones(1), np.ones((1, 3)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2 diary persons"):
        combined(one, one, Persons(np.ones(5), f=np.ones((5, 3))))

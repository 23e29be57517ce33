"""The prediction-powered estimate (clients/estimation/ppi.py) on populations whose truth is known:
unbiased with a biased model, intervals that hold the truth at their rate over repeated samples,
and never worse than the diary sample alone."""

from __future__ import annotations

import numpy as np
import pytest

from clients.estimation.ppi import Group, Persons, by_cell, combined, ratio_estimate, tuning

MU = np.array([300.0, 500.0, 640.0])  # true mean minutes per day of three activities


def _group(rng, n, quality, bias):
    """n persons with 1-2 days; true minutes y, predictions f = quality * y + (1 - quality) * noise + bias."""
    d = rng.integers(1, 3, n).astype(float)
    y = d[:, None] * (MU + rng.normal(0, 120, (n, 3)))
    f = quality * y + (1 - quality) * d[:, None] * rng.normal(MU, 120, (n, 3)) + d[:, None] * bias
    return d, y, f


def _sample(rng, quality, bias, n_train=240, n_lab=60, n_unl=900):
    t, lab, unl = (_group(rng, n, quality, bias) for n in (n_train, n_lab, n_unl))
    return Persons(t[0], t[1], t[2]), Persons(lab[0], lab[1], lab[2]), Persons(unl[0], f=unl[2])


@pytest.mark.parametrize("quality, bias", [(0.95, 40.0), (0.0, 0.0)], ids=["good-model-biased", "useless-model"])
def test_intervals_hold_the_truth_at_their_rate_and_the_estimate_beats_the_diary_sample(quality, bias):
    rng = np.random.default_rng(7)
    held, err, err_diary = [], [], []
    for _ in range(600):
        trained, lab, unl = _sample(rng, quality, bias)
        est = combined(trained, lab, unl, tuning(trained))
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
        combined(one, one, Persons(np.ones(5), f=np.ones((5, 3))), np.ones(3))


def test_an_activity_no_diary_person_did_still_gets_an_interval_from_the_sensor_persons():
    """The failure a per-cell tuning had: diaries without a rare activity (all zero) gave a zero-width
    interval at 0 although the sensor-only persons' predictions show it is done."""
    rng = np.random.default_rng(3)
    n, m = 40, 600
    y = np.zeros((n, 1, 2))
    y[:, 0, 0] = 600.0
    f_diary = y + rng.uniform(0, 5, y.shape)
    f_sensor = np.zeros((m, 1, 2))
    f_sensor[:, 0, 0] = 600.0
    f_sensor[: m // 20, 0, 1] = 120.0  # 5 % of the sensor-only persons are predicted to do it for 2 hours
    d = lambda k: np.ones((k, 1))  # noqa: E731
    table = by_cell(Group(d(n), y, f_diary), Group(d(n), y, f_diary), Group(d(m), f=f_sensor), 1440.0)
    assert table.high[0, 1] - table.low[0, 1] > 1.0, (table.low, table.high)
    assert table.estimate[0, 1] > 0.0  # the predictions move the estimate off the diaries' zero


def test_by_cell_leaves_a_cell_without_two_diary_persons_empty_and_keeps_minutes_within_the_day():
    rng = np.random.default_rng(5)
    n, m, k = 30, 200, 3
    days = np.ones((n, 2))
    days[1:, 1] = 0  # cell 1: a single diary person in each diary group
    y = days[:, :, None] * rng.dirichlet(np.ones(k), (n, 2)) * 1440
    sens = np.ones((m, 2))
    f = sens[:, :, None] * rng.dirichlet(np.ones(k), (m, 2)) * 1440
    table = by_cell(Group(days, y, y), Group(days, y, y), Group(sens, f=f), 1440.0)
    assert np.isnan(table.estimate[1]).all() and np.isfinite(table.estimate[0]).all()
    assert (table.low[0] >= 0).all() and (table.high[0] <= 1440).all() and (table.low[0] <= table.high[0]).all()

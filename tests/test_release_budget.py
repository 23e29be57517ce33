"""How the time-use release spends its budget. The L2 bound on a person-day's minute vector
(cells.clip_days, inference.day_clip): one person moves the released sums by no more than the
sensitivity the noise is calibrated to, even a person whose days are one activity only, and the
bound is what the accounting uses. Budget shares between blocks (release.Mechanism,
inference.wellbeing_share): however they split it, the blocks together stay one Gaussian mechanism
with the accounted noise multiplier. Noise shares of pooled-only publishing (pooled_release.py): the
honest NSOs' shares add up to at least the accounted noise, on SecAgg+'s grid."""

from __future__ import annotations

import numpy as np
import pytest

from dataclasses import replace

from clients.estimation import pooled_release
from clients.estimation.cells import clip_days, layout, partitions
from clients.estimation.config import InferenceConfig
from clients.estimation.estimate_steps import Predictions, sensor_release
from clients.estimation.national import Setting
from clients.estimation.pooling import CLIP
from clients.estimation.release import Mechanism, sensor_mechanism
from clients.privacy.noise_share import GridOverflow
from datasets.errors import UserError
from datasets.inference_data import GROUPS, Sample

DAY, SLOTS, K = 1440.0, 144, 4


def test_clip_days_scales_long_vectors_down_to_the_bound_and_keeps_their_profile():
    per_day = np.array([[1440.0, 0, 0, 0], [480.0, 480, 240, 240], [720.0, 720, 0, 0]])
    out = clip_days(per_day, 1000.0)
    norms = np.linalg.norm(out, axis=1)
    assert norms[0] == pytest.approx(1000.0) and norms[2] == pytest.approx(1000.0)
    np.testing.assert_array_equal(out[1], per_day[1])  # L2 norm 759: below the bound, untouched
    np.testing.assert_allclose(out[2] / out[2].sum(), per_day[2] / per_day[2].sum())
    with pytest.raises(ValueError, match="must be positive"):
        clip_days(per_day, 0.0)


def _setting(epsilon: float | None, day_clip: float = 0.72) -> Setting:
    cfg = InferenceConfig(enabled=True, epsilon=epsilon, groups=["sex", "daytype"], day_clip=day_clip)
    return Setting(cfg=cfg, subdir="x", labels=tuple(f"a{i}" for i in range(K)), wellbeing_range=None,
                   window_minutes=DAY / SLOTS, slots_per_day=SLOTS, available=("sex", "daytype"), delta=1e-5,
                   max_labelled_windows=1, max_person_days=10, max_diary_days=10)


def _sample(persons: int, days: int) -> Sample:
    n = persons * days * SLOTS
    person = np.repeat(np.arange(persons), days * SLOTS)
    day = np.tile(np.repeat(np.arange(days), SLOTS), persons)
    groups = {g: np.zeros(persons, np.int64) for g in GROUPS}
    return Sample(np.zeros((n, 0), np.float32), person, day, np.zeros(n, np.int8), groups)  # weekdays: a person's days share cells


def _minutes_without_last_person(st: Setting, bound: float | None) -> float:
    """L2 distance between the released minutes with and without the last person, who spends every
    window of 3 days on activity 0 (each of their person-days: L2 norm 1,440)."""
    rng = np.random.default_rng(0)
    sample = _sample(6, 3)
    proba = rng.dirichlet(np.ones(K), len(sample.person))
    proba[sample.person == 5] = np.eye(K)[0]
    p = Predictions(proba, proba.argmax(1), np.full(len(proba), np.nan))
    with_all, _, _ = sensor_release(sample, p, st.cells, st.cfg, st.window_minutes, bound)
    keep = sample.person < 5
    fewer = Sample(sample.x[keep], sample.person[keep], sample.day[keep], sample.weekend[keep], sample.groups)
    p_fewer = Predictions(proba[keep], proba[keep].argmax(1), p.wellbeing[keep])
    without, _, _ = sensor_release(fewer, p_fewer, st.cells, st.cfg, st.window_minutes, bound)
    return float(np.linalg.norm(with_all["minutes"] - without["minutes"]))


def test_one_person_moves_the_clipped_release_by_at_most_its_accounted_sensitivity():
    st = _setting(1.0)
    sensor, _ = st.mechanisms()
    accounted = sensor.sensitivity["minutes"]
    assert st.day_bound == pytest.approx(0.72 * DAY)
    assert accounted == pytest.approx(st.cfg.max_days * 0.72 * DAY * np.sqrt(partitions(layout(["sex", "daytype"], ["sex", "daytype"]))))
    moved = _minutes_without_last_person(st, st.day_bound)
    assert moved <= accounted * (1 + 1e-9)
    assert moved == pytest.approx(accounted)  # this person reaches the bound in every partition
    # unclipped, the same person would move the sums by more than the noise was calibrated to
    assert _minutes_without_last_person(st, None) > accounted * 1.3


def test_without_dp_nothing_is_clipped_and_the_bound_follows_day_clip():
    assert _setting(None).day_bound is None
    lab, tr = _setting(1.0, day_clip=0.5).ppi_mechanisms()
    full_lab, _ = _setting(1.0, day_clip=1.0).ppi_mechanisms()
    assert lab.noise_std["diary"] == pytest.approx(0.5 * full_lab.noise_std["diary"])
    with pytest.raises(ValueError, match="day_clip"):
        InferenceConfig(day_clip=1.5)


def _sensitivity_over_noise(mech: Mechanism) -> float:
    """The L2 norm of one person's largest move of the whole release, in units of its noise: what
    the epsilon of a Gaussian mechanism rests on (1 / z)."""
    return float(np.sqrt(sum((mech.sensitivity[k] / mech.noise_std[k]) ** 2 for k in mech.sensitivity)))


@pytest.mark.parametrize("share", [None, 0.05, 0.2, 0.5, 0.9])
def test_budget_shares_keep_the_sensor_release_one_mechanism_at_its_noise_multiplier(share):
    z = 3.2
    mech = sensor_mechanism(z, 1e-5, 5, 2, 1036.8, 311.0, person_days=False, wellbeing_share=share)
    assert _sensitivity_over_noise(mech) == pytest.approx(1.0 / z)
    equal = sensor_mechanism(z, 1e-5, 5, 2, 1036.8, 311.0, person_days=False)
    if share is not None:  # the minutes get the rest of the budget: less noise than an equal split when share < 1/2
        assert mech.noise_std["minutes"] / equal.noise_std["minutes"] == pytest.approx(np.sqrt(0.5 / (1 - share)))
    acc = sensor_mechanism(z, 1e-5, 5, 2, 1036.8, 311.0, person_days=True, wellbeing_share=share)
    assert _sensitivity_over_noise(acc) == pytest.approx(1.0 / z)


def test_budget_shares_that_do_not_add_up_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        Mechanism(1.0, {"a": 1.0, "b": 1.0}, 1e-5, {"a": 0.5, "b": 0.6})
    with pytest.raises(ValueError, match="must name the blocks"):
        Mechanism(1.0, {"a": 1.0, "b": 1.0}, 1e-5, {"a": 1.0})
    with pytest.raises(ValueError, match="wellbeing_share"):
        InferenceConfig(wellbeing_share=1.0)


def _pooled(nsos: int, honest: int | None = None) -> Setting:
    cfg = InferenceConfig(enabled=True, epsilon=1.0, groups=["sex", "daytype"], publish="pooled", honest_nsos=honest)
    return Setting(cfg=cfg, subdir="x", labels=tuple(f"a{i}" for i in range(K)), wellbeing_range=(0.0, 6.0),
                   window_minutes=DAY / SLOTS, slots_per_day=SLOTS, available=("sex", "daytype"), delta=1e-5,
                   max_labelled_windows=1, max_person_days=2000, max_diary_days=600, nsos=nsos,
                   grid_step=2 * CLIP / 2 ** 22)


def _exact(st: Setting, rng) -> dict[str, np.ndarray]:
    layout = st.estimates_layout()
    out = {name: np.zeros(shape) for name, shape, _ in layout.blocks}
    out.update(ppi_trained=rng.uniform(0, 3e4, out["ppi_trained"].shape), ppi_nsos=np.ones(1),
               wb=rng.uniform(-1e3, 1e3, out["wb"].shape))
    return out


@pytest.mark.parametrize("honest", [None, 2])
def test_noise_shares_of_the_honest_nsos_carry_at_least_the_accounted_noise(honest):
    """Each NSO adds 1/h of the variance: h shares hold the national mechanism's noise, grown only by
    the grid's rounding (accounted in the sensitivity); measured on SecAgg+'s sum by repetition."""
    st = _pooled(4, honest)
    h = honest or 4
    layout = st.estimates_layout()
    share, national = pooled_release.share_std(st, layout), st.ppi_noise_std()
    for block, sums in pooled_release.NOISY_SUMS.items():
        assert national[sums] <= share[block] * np.sqrt(h) <= 1.1 * national[sums]
    for mech in pooled_release.mechanisms(st, layout).values():  # h shares: one mechanism at the release's z
        whole = replace(mech, fraction=1.0)
        assert _sensitivity_over_noise(whole) == pytest.approx(1.0 / mech.z)
        assert mech.noise_std == pytest.approx({k: v / np.sqrt(h) for k, v in whole.noise_std.items()})
    rng = np.random.default_rng(3)
    exact = _exact(st, rng)
    sums = [sum(pooled_release.pack_share(st, layout, exact, rng) for _ in range(4)) for _ in range(300)]
    got = np.stack([layout.unpack(v)["ppi_trained"] for v in sums])
    assert got.mean(0) == pytest.approx(4 * exact["ppi_trained"], abs=4 * 4 * share["ppi_trained"] / np.sqrt(300))
    assert got.std(0).mean() == pytest.approx(2 * share["ppi_trained"], rel=0.08)  # 4 shares summed
    step = st.grid_step
    one = pooled_release.pack_share(st, layout, exact, rng)
    np.testing.assert_array_equal(np.round(one / step) * step, one)  # on SecAgg+'s grid: its rounding is exact


def test_a_share_that_secagg_would_clip_or_too_few_shares_are_refused():
    st = _pooled(3)
    layout = st.estimates_layout()
    exact = _exact(st, np.random.default_rng(0))
    exact["ppi_trained"] = exact["ppi_trained"] * 1e4  # beyond the clipping range of its public bound
    with pytest.raises(GridOverflow, match="less noise than accounted"):
        pooled_release.pack_share(st, layout, exact, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="fewer than the 3"):
        pooled_release.check_shares({"ppi_nsos": np.array([2.0])}, st)
    with pytest.raises(UserError, match="honest_nsos = 4"):
        pooled_release.honest_nsos(_pooled(3, 4))
    with pytest.raises(ValueError, match="publish = 'pooled'"):
        InferenceConfig(publish="pooled")

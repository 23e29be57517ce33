"""The DP release of the prediction-powered estimate (clients/estimation/ppi_release.py) on
populations whose truth is known: the noise is what the accounting says, the estimate from noisy
sums is unbiased, and its intervals - noise plus a sampling variance read from the released sums
alone - hold the truth at their rate, nationally and pooled from summed sums."""

from __future__ import annotations

import numpy as np
import pytest

from clients.estimation import ppi, ppi_release
from clients.estimation.release import noise_multiplier

DAY = 1440.0
SHARES = np.array([0.35, 0.4, 0.25])


CELLS = [("all", "all"), ("sex", "f"), ("sex", "m"), ("age", "a"), ("age", "b"), ("age", "c")]


def _group(rng, n, quality, with_y=True, with_f=True):
    """n persons with 1-2 days, in the overall cell and one cell of each breakdown (CELLS); their
    minutes sum to the day; predictions mix the truth with other persons' minutes."""
    days = rng.integers(1, 3, n).astype(float)
    y = days[:, None] * rng.dirichlet(SHARES * 20, n) * DAY
    f = quality * y + (1 - quality) * days[:, None] * rng.dirichlet(SHARES * 20, n) * DAY
    member = np.zeros((n, len(CELLS)))
    member[:, 0] = 1.0
    member[np.arange(n), 1 + rng.integers(0, 2, n)] = 1.0
    member[np.arange(n), 3 + rng.integers(0, 3, n)] = 1.0
    d = member * days[:, None]
    return ppi.Group(d, member[:, :, None] * y[:, None] if with_y else None,
                     member[:, :, None] * f[:, None] if with_f else None)


def _nso(rng, scale=1):
    return _group(rng, 200 * scale, 0.9), _group(rng, 60 * scale, 0.9), _group(rng, 900 * scale, 0.9, with_y=False)


def _release(rng, groups, z):
    trained, labelled, sensor = groups
    parts = len(CELLS) - 3  # the overall cell and two breakdowns: a person adds to three cells
    lab_m, tr_m = (f(z, 1e-5, parts, 2, DAY) for f in (ppi_release.labelled_mechanism, ppi_release.trained_mechanism))
    std_s = z * ppi_release.minutes_sensitivity(parts, 2, DAY)  # one block: the sensor-only release without well-being
    noisy_s = sensor.f.sum(0) + rng.normal(0, std_s, sensor.f.sum(0).shape)
    return ppi_release.release(trained, labelled, noisy_s, std_s, lab_m, tr_m, rng, rng, CELLS)


def test_the_released_sums_carry_the_accounted_noise():
    rng = np.random.default_rng(0)
    groups = _nso(rng)
    z = noise_multiplier(1.0, 1e-5)
    draws = np.stack([_release(rng, groups, z).labelled_diary for _ in range(400)])
    # two blocks (diary and predicted), then the consistency step's projection
    accounted = z * np.sqrt(2) * ppi_release.minutes_sensitivity(3, 2, DAY) * np.sqrt(np.diag(ppi_release.consistency(CELLS)))
    assert draws.std(axis=0).mean(axis=1) == pytest.approx(accounted, rel=0.08)
    with pytest.raises(ValueError, match="no accounted sensitivity"):
        ppi_release.trained_mechanism(z, 1e-5, 1, 2, DAY).apply({"predicted": np.zeros(3)}, rng)


# Where sampling dominates, the interval's sampling variance is read from 6 cells' squared
# differences (ppi_release.sampling_from_release; about 4 degrees of freedom per activity here, more
# in the product's 12 cells x 10 activities): coverage measured 91.7 %, below the nominal rate;
# where the noise dominates it is nominal. The bench measures the product's own setting.
@pytest.mark.parametrize("z, scale, lowest", [(0.05, 1, 0.90), (5.0, 4, 0.93)], ids=["little-noise", "noise-dominated"])
def test_estimates_from_noisy_sums_are_unbiased_and_their_intervals_hold_nationally_and_pooled(z, scale, lowest):
    rng = np.random.default_rng(1)
    truth = SHARES * DAY  # the population's minutes per day (the generator's mean shares)
    held, err, held_pooled, err_pooled = [], [], [], []
    lab_m, tr_m = (f(z, 1e-5, 3, 2, DAY) for f in (ppi_release.labelled_mechanism, ppi_release.trained_mechanism))
    std = {"sensor_predicted": z * ppi_release.minutes_sensitivity(3, 2, DAY), **{
        f"labelled_{k}": v for k, v in lab_m.noise_std.items()}, "trained_diary": tr_m.noise_std["diary"]}
    for _ in range(300):
        total = None
        for _nso_index in range(3):
            groups = _nso(rng, scale)
            sums = _release(rng, groups, z)
            t = ppi_release.estimate(sums, DAY)
            held.append((t.low <= truth) & (truth <= t.high))
            err.append(t.estimate - truth)
            b = ppi_release.pooling(sums)
            total = b if total is None else {k: total[k] + b[k] for k in b}
        p = ppi_release.pooled(total, std, DAY, CELLS)
        held_pooled.append((p.low <= truth) & (truth <= p.high))
        err_pooled.append(p.estimate - truth)
    for h, e in ((held, err), (held_pooled, err_pooled)):
        e = np.array(e)
        assert lowest <= np.mean(h) <= 0.98, np.mean(h)
        assert (np.abs(e.mean(axis=0)) < 0.2 * np.sqrt((e ** 2).mean(axis=0))).all()  # no bias, in every cell
    assert np.sqrt(np.mean(np.square(err_pooled))) < np.sqrt(np.mean(np.square(err)))  # pooling more persons helps


def test_the_consistency_step_keeps_exact_sums_and_removes_the_noise_it_says():
    """Breakdowns add up to the overall cell: projecting noisy sums onto that leaves exact sums alone
    and cuts the overall cell's noise to sigma^2 x M's diagonal (measured over repeated draws)."""
    cells = [("all", "all"), ("sex", "f"), ("sex", "m"), ("age", "a"), ("age", "b"), ("age", "c")]
    m = ppi_release.consistency(cells)
    rng = np.random.default_rng(4)
    parts = rng.uniform(100, 200, (5, 3))  # sex f, m and age a, b, c; the age cells re-split the same total
    exact = np.vstack([parts[:2].sum(0), parts[:2], parts[2:] * parts[:2].sum(0) / parts[2:].sum(0)])
    assert np.allclose(m @ exact, exact)
    noisy = np.stack([m @ (exact + rng.normal(0, 10.0, exact.shape)) for _ in range(4000)])
    measured = noisy.std(axis=0).mean(axis=1)
    assert measured == pytest.approx(10.0 * np.sqrt(np.diag(m)), rel=0.05)
    assert np.diag(m)[0] == pytest.approx(1 / (1 + 1 / 2 + 1 / 3))  # the overall cell borrows from both breakdowns


def test_the_overall_cell_reads_its_own_dispersion_from_the_release():
    """The overall cell mixes every group, so its persons vary more per person-day than a breakdown
    category's: each kind of cell (`cell_kinds`) gets the psi its own moment equations say."""
    kinds = ppi_release.cell_kinds(CELLS)
    assert kinds.tolist() == [0, 1, 1, 1, 1, 1]
    scale = np.full((len(CELLS), 3), 2.0)
    excess = np.where(kinds[:, None] == 0, 4.0, 1.0) * scale
    psi, _ = ppi_release._dispersion_by_kind(excess, scale, excess, kinds)
    np.testing.assert_allclose(psi[0], 4.0)
    np.testing.assert_allclose(psi[1:], 1.0)
    one, _ = ppi_release._dispersion_by_kind(excess, scale, excess, None)  # one psi for all: the breakdowns dominate
    assert (one[0] < 2.0).all()

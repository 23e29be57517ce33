"""Federation-wide person-level DP (DP-FedAvg with distributed noise under SecAgg+): both epsilons
recomputed by dp-accounting, and every way the aggregate could carry less noise than accounted
fails loudly."""

from __future__ import annotations

import json

import dp_accounting as dpa
import numpy as np
import pytest
from flwr.common.secure_aggregation.quantization import dequantize, quantize

from clients.privacy.noise_share import GridOverflow, grid_step, noisy_share
from simulation.cli import main

FED = ["--set", "data.generate.nsos=['FI','NL','PL','ES']", "--set", "data.generate.persons_scale=0.5",
       "--set", "privacy.enabled=true", "--set", "privacy.unit='person'", "--set", "privacy.scope='federation'",
       "--set", "secure_aggregation.enabled=true", "--quiet"]


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    code = main(["run", *FED, "--set", f"output.dir={tmp_path / 'runs'}", "--out", str(out), *extra])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    return code, summary, out


def _google(history, delta, kind):
    acc = dpa.rdp.RdpAccountant() if kind == "rdp" else dpa.pld.PLDAccountant()
    for h in history:
        acc.compose(dpa.SelfComposedDpEvent(
            dpa.PoissonSampledDpEvent(h["sample_rate"], dpa.GaussianDpEvent(h["noise_multiplier"])), h["steps"]))
    return acc.get_epsilon(delta)


@pytest.mark.parametrize("accountant, google", [("rdp", "rdp"), ("prv", "pld")])
def test_both_epsilons_are_recomputed_by_dp_accounting(tmp_path, accountant, google):
    code, s, out = _run(tmp_path, accountant, "--set", "privacy.target_epsilon=4", "--set", "federation.rounds=3",
                        "--set", f"privacy.accountant='{accountant}'")
    assert code == 0
    p = s["privacy"]
    assert p["scope"] == "federation" and p["unit"] == "person" and p["min_nsos"] >= 2
    hist = p["history"]["federation"]
    assert [h["round"] for h in hist] == [1, 2, 3] and all(h["steps"] == 1 for h in hist)
    assert _google(hist, p["delta"], google) == pytest.approx(p["epsilon_accounted"], rel=0.01)
    assert p["epsilon_accounted"] <= 4.0 * 1.0001  # calibrated to the target, never above it
    assert _google(p["nso_share_history"], p["delta"], google) == pytest.approx(p["nso_share_epsilon_accounted"],
                                                                              rel=0.01)
    # reported: the tighter of the run's accountant and dp-accounting's PLD, for both epsilons
    assert p["epsilon"] == pytest.approx(min(p["epsilon_accounted"], _google(hist, p["delta"], "pld")), rel=1e-3)
    assert p["nso_share_epsilon"] == pytest.approx(min(p["nso_share_epsilon_accounted"],
                                                       _google(p["nso_share_history"], p["delta"], "pld")), rel=1e-3)
    assert p["nso_share_epsilon"] > p["epsilon"]  # one NSO's share alone is weaker
    assert p["delta"] == pytest.approx(0.1 / p["persons"])  # one delta over the persons of all NSOs
    # what the NSOs sent in the clear says nothing about their persons
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"event"' not in x]
    sent = {k.split(".", 2)[2] for r in rows for k in r if k.startswith("fit.")}
    assert sent == {"noise_std"}


def test_federation_scope_is_refused_without_secure_aggregation(tmp_path, capsys):
    code, _, out = _run(tmp_path, "nosa", "--set", "privacy.target_epsilon=4", "--set", "secure_aggregation.enabled=false")
    assert code == 2 and not out.exists()
    assert "needs secure_aggregation.enabled = true" in capsys.readouterr().err


def test_min_nsos_above_the_secagg_threshold_is_refused_before_any_work(tmp_path, capsys):
    code, _, out = _run(tmp_path, "kmin", "--set", "privacy.target_epsilon=4", "--set", "privacy.min_nsos=4",
                        "--set", "secure_aggregation.reconstruction_threshold=0.6")
    assert code == 2 and not (out / "metrics.jsonl").exists()
    assert "exceeds the SecAgg+ reconstruction threshold" in capsys.readouterr().err


def test_a_dropout_below_k_min_stops_the_run_before_anything_is_revealed(tmp_path, capsys):
    code, s, out = _run(tmp_path, "drop", "--set", "privacy.target_epsilon=4", "--set", "federation.rounds=2",
                        "--set", "secure_aggregation.reconstruction_threshold=1.0",  # k_min = all 4 NSOs
                        "--set", "secure_aggregation.dropouts=[{nso='FI', stage='collect_masked_vectors', round=1}]")
    assert code != 0 and s is None
    err = capsys.readouterr().err
    assert "secure aggregation halted" in err
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"round"' in x]
    assert all("dp.epsilon" not in r for r in rows)  # no round was aggregated


def test_noise_that_secagg_would_clip_makes_the_round_fail_loudly(tmp_path, capsys):
    code, s, _ = _run(tmp_path, "clip", "--set", "privacy.noise_multiplier=1.0", "--set", "federation.rounds=1",
                      "--set", "secure_aggregation.clipping_range=0.001")
    assert code != 0 and s is None
    assert "carry less noise than accounted" in capsys.readouterr().err


def test_noise_shares_lie_on_the_secagg_grid_and_pass_its_quantizer_unchanged():
    c, q = 8.0, 2**22
    step = grid_step(c, q)
    rng = np.random.default_rng(0)
    sums = [rng.normal(0, 0.5, (40, 30)), rng.normal(0, 0.5, 30)]
    share = noisy_share(sums, 0.3, step, c, rng)
    for v in share:
        assert np.array_equal(v / step, np.round(v / step))  # exactly on the grid
    back = dequantize(quantize(share, c, q), c, q)
    assert all(np.array_equal(a, b) for a, b in zip(share, back))  # SecAgg+ adds no rounding of its own
    noise = np.concatenate([(v - s).ravel() for v, s in zip(share, sums)])
    assert np.std(noise) == pytest.approx(0.3, rel=0.05)  # the share carries the accounted noise
    with pytest.raises(GridOverflow, match="less noise than accounted"):
        noisy_share(sums, 0.3, grid_step(0.5, q), 0.5, rng)


def test_a_diverging_person_counts_as_zero_and_a_non_finite_share_is_never_sent():
    import torch

    from clients.model import ModelConfig, build_model
    from clients.privacy.person_updates import clipped_update_sum
    from datasets.prepared import Arrays

    rng = np.random.default_rng(0)
    n = 40
    model = build_model(ModelConfig(hidden=8, layers=1), 0, 31, 13)
    features = model.trunk[0].in_features
    data = Arrays(rng.normal(size=(n, features)).astype(np.float32), rng.integers(0, 13, n),
                  np.full(n, np.nan, np.float32), np.repeat(np.arange(4), 10))
    sums, stats = clipped_update_sum(model, data, np.arange(4), 3, 0.1, 1.0, 0.2)
    norm = np.sqrt(sum((s ** 2).sum() for s in sums))
    assert 0 < norm <= 4.0 + 1e-6 and stats["diverged"] == 0  # four persons, each clipped to 1
    with torch.no_grad():
        model.head.weight.fill_(1e30)  # every local step now overflows
    sums, stats = clipped_update_sum(model, data, np.arange(4), 3, 0.1, 1.0, 0.2)
    assert stats["diverged"] == 4 and all(np.isfinite(s).all() for s in sums)
    with pytest.raises(GridOverflow, match="non-finite"):
        noisy_share([np.array([np.nan, 0.0])], 0.1, grid_step(8.0, 2**22), 8.0, rng)


@pytest.mark.parametrize("key, factor, expected", [("fdp_noise_std", 0.5, "noise_std"),
                                                   ("fdp_sample_rate", 1.5, "sample_rate"),
                                                   ("fdp_clip", 2.0, "clip")])
def test_an_nso_refuses_a_server_instruction_with_less_noise_than_its_own_plan(tmp_path, capsys, monkeypatch,
                                                                               key, factor, expected):
    """Every NSO recomputes the noise plan from the config and the data index; a server that sends
    less noise (or samples more, or clips less) than that plan gets a refusal, not a noisy share."""
    import server.app

    honest = server.app.fit_config
    monkeypatch.setattr(server.app, "fit_config", lambda *a: {**(c := honest(*a)), key: c[key] * factor})
    code, _, out = _run(tmp_path, key, "--set", "privacy.target_epsilon=4", "--set", "federation.rounds=1")
    err = capsys.readouterr().err
    assert code == 2 and "refuses round 1" in err and expected in err and "less noise than accounted" in err
    assert "Traceback" not in err


def test_local_mini_batches_draw_within_each_person_and_keep_the_clip():
    """privacy.local_batch: each local step sees that many of the person's own windows. A batch at
    least as large as every person is the full-batch update (up to float rounding: the windows are
    drawn in another order); a small one still sums persons each clipped to C; same draws, same sum."""
    from clients.model import ModelConfig, build_model
    from clients.privacy.person_updates import clipped_update_sum
    from datasets.prepared import Arrays

    rng = np.random.default_rng(1)
    n = 60
    model = build_model(ModelConfig(hidden=8, layers=1), 0, 31, 13)
    data = Arrays(rng.normal(size=(n, model.trunk[0].in_features)).astype(np.float32), rng.integers(0, 13, n),
                  np.full(n, np.nan, np.float32), np.repeat(np.arange(4), 15))
    persons = np.arange(4)
    full, _ = clipped_update_sum(model, data, persons, 3, 0.1, 10.0, 0.2)
    whole, _ = clipped_update_sum(model, data, persons, 3, 0.1, 10.0, 0.2, local_batch=15,
                                  rng=np.random.default_rng(0))
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(full, whole))
    small = [clipped_update_sum(model, data, persons, 3, 0.1, 10.0, 0.2, local_batch=3,
                                rng=np.random.default_rng(7))[0] for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*small))  # the draws come from the generator alone
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(full, small[0]))  # 3 of 15 windows: another step
    for p in persons:  # each person alone stays within the clip
        one, _ = clipped_update_sum(model, data, np.array([p]), 3, 0.1, 0.05, 0.2, local_batch=3,
                                    rng=np.random.default_rng(7))
        assert np.sqrt(sum((s ** 2).sum() for s in one)) <= 0.05 * (1 + 1e-5)
    with pytest.raises(ValueError, match="generator"):
        clipped_update_sum(model, data, persons, 3, 0.1, 1.0, 0.2, local_batch=3)


def test_evaluate_every_evaluates_every_nth_round_and_the_last(tmp_path):
    code, s, out = _run(tmp_path, "sparse", "--set", "privacy.target_epsilon=4", "--set", "federation.rounds=3",
                        "--set", "federation.evaluate_every=2", "--set", "privacy.local_batch=8")
    assert code == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"event"' not in x]
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    assert [("central.macro_f1" in r) for r in rows] == [True, False, True, True]
    assert "dp.epsilon" in rows[1]  # a round without evaluation still records its training and privacy
    assert s["final"]["macro_f1"] == rows[-1]["central.macro_f1"]
    _, every, _ = _run(tmp_path, "every", "--set", "privacy.target_epsilon=4", "--set", "federation.rounds=3",
                       "--set", "privacy.local_batch=8")
    assert every["final"] == s["final"]  # skipping evaluations changes no model


def test_fedadam_steps_as_reddi_et_al_give_it():
    """privacy.server_optimizer = "fedadam": m and v moving averages (beta2 0.99), no bias
    correction, x += lr * m / (sqrt(v) + tau) (Reddi et al. 2021, Algorithm 2)."""
    from types import SimpleNamespace

    from server.dp_fedavg import DPFedAvg

    dp = SimpleNamespace(server_optimizer="fedadam", server_momentum=0.9, server_lr=0.1, server_tau=0.01)
    state = SimpleNamespace(dp=dp, _momentum=None)
    u1, u2 = np.array([1.0, -2.0]), np.array([0.5, 0.0])
    s1 = DPFedAvg._step(state, [u1], 0.0)[0]
    s2 = DPFedAvg._step(state, [u2], 0.0)[0]
    m1, v1 = 0.1 * u1, 0.01 * u1 ** 2
    m2, v2 = 0.9 * m1 + 0.1 * u2, 0.99 * v1 + 0.01 * u2 ** 2
    assert np.allclose(s1, 0.1 * m1 / (np.sqrt(v1) + 0.01)) and np.allclose(s2, 0.1 * m2 / (np.sqrt(v2) + 0.01))

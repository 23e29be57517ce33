"""The empirical privacy check: the one-run audit's statistics, membership inference, and that the
audit sees a leaking run and a broken mechanism while a correct one passes (docs/privacy.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from simulation.audit.membership import auc, tpr_at_fpr
from simulation.audit.one_run import epsilon_lower_bound, guess, p_value
from simulation.cli import main
from simulation.config import load_config
from simulation.experiment import run_experiment

SMALL = ["data.generate.nsos=['FI','NL','PL']", "data.generate.persons_scale=0.5", "audit.enabled=true",
         "audit.canaries=500", "engine.local_workers=1"]


def test_the_one_run_statistics_match_their_closed_forms():
    # without delta the p-value is the binomial tail of eps-DP randomized response
    q = 1 / (1 + math.exp(-1.0))
    assert p_value(1000, 100, 70, 1.0, 0.0) == pytest.approx(stats.binom.sf(69, 100, q))
    # all r guesses right: the bound solves q(eps)^r = 1 - confidence
    r = 100
    q_star = 0.05 ** (1 / r)
    assert epsilon_lower_bound(1000, r, r, 0.0) == pytest.approx(math.log(q_star / (1 - q_star)), abs=1e-6)
    # coin flipping proves nothing; more correct guesses prove more; delta only weakens the bound
    assert epsilon_lower_bound(1000, 100, 50, 1e-5) == 0.0
    bounds = [epsilon_lower_bound(1000, 100, v, 1e-5) for v in (60, 70, 80, 90)]
    assert bounds == sorted(bounds) and bounds[-1] > 1
    assert epsilon_lower_bound(1000, 100, 90, 1e-3) < epsilon_lower_bound(1000, 100, 90, 0.0)
    with pytest.raises(ValueError):
        p_value(10, 20, 5, 1.0, 0.0)


def test_guessing_takes_the_extremes_and_membership_scores_rank_like_roc_auc():
    scores = np.arange(10.0)
    included = scores >= 5
    assert guess(scores, included, 0.4) == (4, 4)  # two top "in", two bottom "out": all right
    rng = np.random.default_rng(0)
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auc(np.ones(5), np.ones(7)) == 0.5
    a, b = rng.normal(1, 1, 400), rng.normal(0, 1, 400)
    assert auc(a, b) == pytest.approx(stats.norm.cdf(1 / math.sqrt(2)), abs=0.05)
    assert 0 <= tpr_at_fpr(a, b) <= 0.2


def _audit(tmp_path, name, *extra):
    cfg = load_config(None, [*SMALL, *extra, f"output.dir='{tmp_path / 'runs'}'"])
    run = run_experiment(cfg, tmp_path / name, quiet=True)
    return json.loads((run / "summary.json").read_text())["audit"]


def test_a_non_private_run_leaks_and_the_audit_says_so(tmp_path):
    a = _audit(tmp_path, "open", "federation.rounds=5")
    assert a["epsilon_lower_bound"] > 1.0 and a["reported_epsilon"] is None
    assert a["canaries"] == 500 and a["guesses"] == 100 and 0 <= a["correct"] <= 100 and a["confidence"] == 0.95
    assert 0.5 < a["mia_auc"] < 1 and 0 <= a["mia_tpr_at_1pct_fpr"] <= 1
    assert set(a["mia_per_nso"]) == {"FI", "NL", "PL"}


def test_a_mechanism_that_accounts_dp_but_trains_without_it_is_caught_where_the_correct_one_passes(
        tmp_path, monkeypatch):
    dp = ["federation.rounds=10", "privacy.enabled=true", "privacy.unit='person'", "privacy.target_epsilon=0.5",
          "privacy.person_sample_rate=0.25", "privacy.steps_per_round=4"]
    correct = _audit(tmp_path, "correct", *dp)
    run_delta = json.loads((tmp_path / "correct" / "summary.json").read_text())["privacy"]["delta"]
    assert correct["delta"] == run_delta  # the run's delta (0.1 / n here), not a nominal one
    assert correct["epsilon_lower_bound"] <= correct["reported_epsilon"]
    assert correct["p_value_at_reported_epsilon"] > 0.05

    import clients.nso_client as nso_client
    from clients.training import train

    # the broken variant: the ledger accounts DP-SGD, the NSOs train without clipping or noise
    monkeypatch.setattr(nso_client, "dp_train", lambda model, data, tcfg, mcfg, unit, sigma, clip, q, steps, seeds:
                        train(model, data, tcfg, mcfg, seeds[0]))
    broken = _audit(tmp_path, "broken", *dp)
    assert broken["reported_epsilon"] == pytest.approx(correct["reported_epsilon"])
    assert broken["epsilon_lower_bound"] > broken["reported_epsilon"]
    assert broken["p_value_at_reported_epsilon"] < 0.05


@pytest.mark.parametrize("sets, expected", [
    (["audit.canaries=5"], "audit.canaries"),
    (["audit.guess_fraction=0"], "audit.guess_fraction"),
    (["audit.confidence=1.5"], "audit.confidence"),
    (["audit.unit='day'"], "audit.unit"),
    (["audit.enabled=true", "audit.canaries=100000", "data.generate.persons_scale=0.1"], "more than 10x the persons"),
])
def test_a_bad_audit_config_gets_one_clear_message(tmp_path, capsys, sets, expected):
    argv = ["run", "--quiet", "--set", f"output.dir='{tmp_path}'"] + [a for s in sets for a in ("--set", s)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_the_federation_scope_is_audited_from_the_servers_seat_and_missing_noise_shares_are_caught(
        tmp_path, monkeypatch):
    """Update-direction canaries in the NSOs' sums, looked for in the aggregates SecAgg+ reveals."""
    fed = ["federation.rounds=5", "privacy.enabled=true", "privacy.unit='person'", "privacy.scope='federation'",
           "privacy.target_epsilon=0.5", "secure_aggregation.enabled=true", "model.hidden=32", "audit.canaries=300"]
    correct = _audit(tmp_path, "fed", *fed)
    view = correct["server_view"]
    assert view["canaries"] == 300 and view["guesses"] == 60 and view["rounds"] == 5
    assert view["epsilon_lower_bound"] <= correct["reported_epsilon"]
    assert (tmp_path / "fed" / "server_view.npy").exists()

    import clients.nso_client as nso_client

    # the broken variant: the accounting assumes every NSO adds its noise share; none does
    share = nso_client.noisy_share
    monkeypatch.setattr(nso_client, "noisy_share", lambda sums, std, step, limit, rng: share(sums, 0.0, step, limit, rng))
    broken = _audit(tmp_path, "fed-broken", *fed)["server_view"]
    assert broken["epsilon_lower_bound"] > correct["reported_epsilon"]
    assert broken["p_value_at_reported_epsilon"] < 0.05


def test_the_server_seat_replays_reproducible_noise_and_loses_against_secure_noise(tmp_path, monkeypatch):
    """An attacker that knows what the server knows (config, seed, code, every aggregate) redraws the
    NSOs' noise shares: it wins against noise derived from the seed - reproducible mode, and the
    code before issue 19 (kept here as the broken variant) - and loses when the NSOs use OS entropy."""
    fed = ["federation.rounds=3", "privacy.enabled=true", "privacy.unit='person'", "privacy.scope='federation'",
           "privacy.target_epsilon=0.5", "secure_aggregation.enabled=true", "model.hidden=32", "audit.canaries=100",
           "audit.membership=false"]
    seed_name = "node secret from the run seed (randomness = 'reproducible')"
    legacy_name = "round seed from the run seed (the code before issue 19)"
    reproducible = _audit(tmp_path, "rep", *fed, "randomness='reproducible'")["replay"]
    assert reproducible["won"] and reproducible["rounds"] == 3
    assert reproducible["candidates"][seed_name]["z"] > 20
    assert reproducible["candidates"][seed_name]["energy_removed"] > 0.5
    assert abs(reproducible["candidates"][legacy_name]["z"]) < 4

    secure = _audit(tmp_path, "sec", *fed, "randomness='secure'")["replay"]
    assert not secure["won"]
    for c in secure["candidates"].values():
        assert abs(c["z"]) < 4 and c["energy_removed"] < 0  # a wrong replay only adds noise

    import numpy as np

    import clients.nso_client as nso_client
    from clients.privacy.randomness import Randomness

    class Legacy(Randomness):  # the broken variant: the federation stream from the public round seed
        def generator(self, purpose, *ids):
            return np.random.default_rng(nso_client.round_seed(0, self.nso, ids[0])) if purpose == "federation" \
                else super().generator(purpose, *ids)

    def legacy(mode, node_config, seed, nso):
        r = Legacy("secure")
        object.__setattr__(r, "nso", nso)
        return r

    monkeypatch.setattr(nso_client, "node_randomness", legacy)
    broken = _audit(tmp_path, "legacy", *fed, "randomness='secure'")["replay"]
    assert broken["won"] and broken["candidates"][legacy_name]["z"] > 20

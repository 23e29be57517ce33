"""DP-SGD: whole-run accounting checked by an independent accountant, budgets, person-level units."""

from __future__ import annotations

import json

import dp_accounting as dpa
import pytest
import torch

from clients.privacy.accounting import epsilon_of
from clients.privacy.sampling import poisson_batch
from simulation.cli import main

SMALL = ["--set", "data.generate.nsos=['FI','NL','PL']", "--set", "data.generate.persons_scale=0.5", "--quiet"]


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    code = main(["run", *SMALL, "--set", f"output.dir={tmp_path / 'runs'}", "--out", str(out), *extra])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    return code, summary, out


def _google(history: list[dict], delta: float, kind: str) -> float:
    acc = dpa.rdp.RdpAccountant() if kind == "rdp" else dpa.pld.PLDAccountant()
    for h in history:
        acc.compose(dpa.SelfComposedDpEvent(
            dpa.PoissonSampledDpEvent(h["sample_rate"], dpa.GaussianDpEvent(h["noise_multiplier"])), h["steps"]))
    return acc.get_epsilon(delta)


def test_accountants_match_google_dp_accounting_reference_values():
    history = [(1.0, 0.01, 1000)]
    assert epsilon_of(history, 1e-5, "rdp") == pytest.approx(2.10, rel=0.01)
    assert epsilon_of(history, 1e-5, "prv") == pytest.approx(1.83, rel=0.01)
    ref = [{"sample_rate": 0.01, "noise_multiplier": 1.0, "steps": 1000}]
    assert _google(ref, 1e-5, "rdp") == pytest.approx(2.10, rel=0.01)
    assert _google(ref, 1e-5, "pld") == pytest.approx(1.83, rel=0.01)


@pytest.mark.parametrize("accountant, google", [("rdp", "rdp"), ("prv", "pld")])
def test_reported_epsilon_is_recomputed_by_dp_accounting_from_summary_history(tmp_path, accountant, google):
    code, s, out = _run(tmp_path, accountant, "--set", "privacy.enabled=true", "--set", "privacy.target_epsilon=4",
                        "--set", f"privacy.accountant='{accountant}'", "--set", "federation.rounds=3")
    assert code == 0
    p = s["privacy"]
    assert p["unit"] == "record" and p["accountant"] == accountant and p["delta"] < 1e-4
    for nso, eps in p["per_nso_epsilon"].items():
        hist = p["history"][nso]
        assert [h["round"] for h in hist] == [1, 2, 3]  # every round accounted, none reset
        accounted = p["per_nso_epsilon_accounted"][nso]
        assert _google(hist, p["delta"], google) == pytest.approx(accounted, rel=0.01)
        assert accounted <= 4.0 * 1.0001  # calibrated to the target, never above it
        # reported: the tighter of the run's accountant and dp-accounting's PLD on the same history
        assert eps == pytest.approx(min(accounted, _google(hist, p["delta"], "pld")), rel=1e-3)
        assert p["per_nso_epsilon_by"][nso] == ("pld" if eps < accounted else "accountant")
    assert p["epsilon"] == max(p["per_nso_epsilon"].values())
    # per-round epsilon grows and equals the composition of the rounds so far
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    fi = [r["fit.FI.epsilon"] for r in rows if "fit.FI.epsilon" in r]
    assert fi[0] < fi[1] < fi[2]
    assert _google(p["history"]["FI"][:2], p["delta"], google) == pytest.approx(fi[1], rel=0.01)


def test_dp_at_epsilon_8_still_learns_well_above_chance(tmp_path):
    code, s, _ = _run(tmp_path, "e8", "--set", "privacy.enabled=true", "--set", "privacy.target_epsilon=8",
                      "--set", "federation.rounds=3")
    assert code == 0 and s["privacy"]["epsilon"] <= 8.0001
    assert s["final"]["accuracy"] > 0.5  # chance 1/13; always predicting the largest class (sleep) ~0.35


def test_budget_is_never_overspent_and_the_run_says_so(tmp_path, capsys):
    code, s, _ = _run(tmp_path, "b", "--set", "privacy.enabled=true", "--set", "privacy.noise_multiplier=1.0",
                      "--set", "privacy.epsilon_budget=2.6", "--set", "federation.rounds=8")
    assert code == 0
    p = s["privacy"]
    assert all(e <= 2.6 for e in p["per_nso_epsilon"].values())
    assert all(r is not None for r in p["budget_exhausted_round"].values())
    assert s["stopped_early"] and "privacy budget" in s["stopped_early"]
    assert s["rounds_completed"] < 8
    for nso, hist in p["history"].items():  # no round beyond the budget, each round as planned
        assert len({h["steps"] for h in hist}) == 1
        assert epsilon_of([(h["noise_multiplier"], h["sample_rate"], h["steps"]) for h in hist],
                          p["delta"], "rdp") <= 2.6
        assert len(hist) >= 1  # it trained before the budget ran out


def test_person_level_sampling_keeps_a_persons_windows_together():
    person = torch.repeat_interleave(torch.arange(50), torch.randint(1, 30, (50,), generator=torch.Generator().manual_seed(0)))
    gen = torch.Generator().manual_seed(1)
    sizes = []
    for _ in range(200):
        chosen, idx = poisson_batch(50, 0.2, gen, person)
        in_batch = torch.zeros(len(person), dtype=torch.bool)
        in_batch[idx] = True
        assert torch.equal(in_batch, chosen[person])  # all windows of a chosen person, none of the others
        sizes.append(int(chosen.sum()))
    assert 0 in sizes or min(sizes) < 10  # Poisson: batch sizes vary
    assert abs(sum(sizes) / len(sizes) - 10) < 1.5  # 50 persons x q = 0.2


def test_person_level_run_accounts_with_the_person_sampling_rate(tmp_path):
    code, s, out = _run(tmp_path, "p", "--set", "privacy.enabled=true", "--set", "privacy.unit='person'",
                        "--set", "privacy.noise_multiplier=1.0", "--set", "privacy.person_batch_size=8",
                        "--set", "federation.rounds=2")
    assert code == 0
    p = s["privacy"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert p["unit"] == "person"
    for nso, hist in p["history"].items():
        persons = manifest["windows"][nso]["train_persons"]
        assert hist[0]["sample_rate"] == pytest.approx(8 / persons)
        assert p["delta"] < 1 / persons
        assert _google(hist, p["delta"], "rdp") == pytest.approx(p["per_nso_epsilon_accounted"][nso], rel=0.01)
        assert _google(hist, p["delta"], "pld") == pytest.approx(p["per_nso_epsilon"][nso], rel=1e-3)


def test_the_pooled_data_ceiling_runs_person_level_dp_sgd_over_all_nsos_persons(tmp_path):
    """engine = centralized with [privacy]: one curator, DP-SGD over the pooled persons, accounted
    like an NSO (dp-accounting recomputes it), never a silent non-private ceiling."""
    sets = ["--set", "engine.name='centralized'", "--set", "privacy.enabled=true", "--set", "privacy.unit='person'",
            "--set", "privacy.target_epsilon=2.0", "--set", "privacy.person_batch_size=8", "--set", "federation.rounds=2"]
    code, s, out = _run(tmp_path, "ceiling", *sets)
    assert code == 0
    p = s["privacy"]
    persons = sum(w["train_persons"] for w in json.loads((out / "manifest.json").read_text())["windows"].values())
    hist = p["history"]["pooled"]
    assert p["scope"] == "centralized" and len(hist) == 2
    assert hist[0]["sample_rate"] == pytest.approx(8 / persons)  # persons of every NSO, each counted once
    assert p["epsilon"] <= 2.0 * (1 + 1e-6)
    assert _google(hist, p["delta"], "pld") == pytest.approx(p["epsilon"], rel=1e-3)
    code, plain, _ = _run(tmp_path, "plain", "--set", "engine.name='centralized'", "--set", "federation.rounds=2")
    assert code == 0 and plain["final"]["macro_f1"] != s["final"]["macro_f1"]  # the noise and clipping did act


@pytest.mark.parametrize("override, expected", [
    (["privacy.delta=0.5"], "privacy.delta = 0.5 must be below 1/n for every NSO"),
    (["privacy.secure_mode=true"], "needs torchcsprng"),
    (["privacy.noise_multiplier=1.0", "privacy.target_epsilon=3"], "give exactly one of"),
    (["privacy.unit='household'"], "privacy.unit: Input should be 'record' or 'person'"),
    (["federation.strategy='fedprox'"], "the proximal term is not implemented in DP-SGD"),
])
def test_bad_privacy_configs(tmp_path, capsys, override, expected):
    extra = ["--set", "privacy.enabled=true"]
    if not any("noise_multiplier" in o or "target_epsilon" in o for o in override):
        extra += ["--set", "privacy.target_epsilon=5"]
    for o in override:
        extra += ["--set", o]
    code, _, _ = _run(tmp_path, "bad", *extra)
    err = capsys.readouterr().err
    assert code == 2 and expected in err.replace("\n", " ") and "Traceback" not in err


def test_every_nso_accounts_with_the_one_delta_when_the_apps_get_no_delta(tmp_path):
    """As under `flwr run .` (run config "privacy.delta" = ""): the server fixes one delta from the
    data index, 0.1 / the largest NSO's units, and every NSO uses it (before, each NSO fell back
    to 0.1 / its own n)."""
    from datasets.prepared import prepare
    from datasets.synthetic.generator import GeneratorSettings, generate
    from simulation.config import ExperimentConfig
    from simulation.engines.local import run_local
    from simulation.experiment import app_run_config

    windows = generate(GeneratorSettings(nsos=["FI", "NL", "PL"], persons_scale=0.3)).windows
    index = prepare(windows, tmp_path / "data", 0, 0.2, 0.1)
    cfg = ExperimentConfig.model_validate({"federation": {"rounds": 1},
                                           "privacy": {"enabled": True, "noise_multiplier": 1.0}})
    rc = app_run_config(cfg, str(tmp_path / "data"), str(tmp_path / "run"), quiet=True)
    assert rc["privacy.delta"] == ""
    run_local(rc, str(tmp_path / "data"))
    row = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    deltas = {n: row[f"fit.{n}.delta"] for n in index["nsos"]}
    largest = max(c["train"] for c in index["windows"].values())
    assert len(set(deltas.values())) == 1 and deltas["FI"] == pytest.approx(0.1 / largest)

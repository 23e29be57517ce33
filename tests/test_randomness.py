"""Where DP noise comes from: secure runs differ run to run, reproducible runs repeat bit for bit, and
the single-release accountant is the tight analytic Gaussian that dp-accounting confirms."""

from __future__ import annotations

import json
from pathlib import Path

import dp_accounting as dpa
import numpy as np
import pandas as pd
import pytest

from clients.privacy import analytic_gaussian as ag
from clients.privacy.randomness import node_randomness, simulated_node_secret
from datasets.errors import UserError
from simulation.cli import main

from .test_privacy import SMALL

ROOT = Path(__file__).resolve().parents[1]


def _dp_run(tmp_path, name: str, randomness: str) -> tuple[dict, pd.DataFrame]:
    out = tmp_path / name
    assert main(["run", *SMALL, "--set", f"output.dir={tmp_path / 'runs'}", "--out", str(out), "--quiet",
                 "--set", "privacy.enabled=true", "--set", "privacy.noise_multiplier=1.0",
                 "--set", "federation.rounds=1", "--set", f"randomness={randomness}"]) == 0
    return json.loads((out / "summary.json").read_text()), pd.read_csv(out / "metrics.csv")


def test_secure_runs_differ_and_reproducible_runs_repeat(tmp_path):
    secure = [_dp_run(tmp_path, f"s{i}", "secure") for i in range(2)]
    repro = [_dp_run(tmp_path, f"r{i}", "reproducible") for i in range(2)]
    acc = "central.loss"
    assert secure[0][1][acc].iloc[-1] != secure[1][1][acc].iloc[-1]  # fresh OS entropy in each NSO
    assert repro[0][1][acc].iloc[-1] == repro[1][1][acc].iloc[-1]  # bit-identical
    assert secure[0][0]["randomness"]["mode"] == "secure"
    assert repro[0][0]["randomness"]["mode"] == "reproducible"
    assert "no guarantee" in repro[0][0]["randomness"]["note"]
    # same epsilon either way: the accounting does not depend on where the noise comes from
    assert secure[0][0]["privacy"]["epsilon"] == repro[0][0]["privacy"]["epsilon"]


def test_node_streams_secure_fresh_reproducible_from_the_node_secret():
    s = node_randomness("secure", {}, 0, "FI")
    assert s.generator("noise", 1).random() != s.generator("noise", 1).random()
    r = node_randomness("reproducible", {"node-secret": simulated_node_secret(7, "FI")}, 0, "FI")
    assert r.generator("noise", 1).random() == node_randomness("reproducible", {}, 7, "FI").generator("noise", 1).random()
    assert r.generator("noise", 1).random() != r.generator("noise", 2).random()
    assert r.generator("noise", 1).random() != node_randomness("reproducible", {}, 7, "SE").generator("noise", 1).random()
    with pytest.raises(UserError, match="allowed are 'reproducible', 'secure'"):
        node_randomness("seeded", {}, 0, "FI")


def test_the_server_side_never_touches_a_node_secret():
    for path in (ROOT / "server").rglob("*.py"):
        text = path.read_text()
        assert "node-secret" not in text and "NODE_SECRET" not in text and "simulated_node_secret" not in text, path
        assert "round_seed" not in text, path


@pytest.mark.parametrize("z, delta", [(0.7, 1e-6), (1.0, 1e-5), (3.0, 1e-4), (10.0, 1e-5)])
def test_analytic_gaussian_agrees_with_dp_accounting_pld(z, delta):
    pld = dpa.pld.PLDAccountant()
    pld.compose(dpa.GaussianDpEvent(z))
    assert ag.epsilon_of(z, delta) == pytest.approx(pld.get_epsilon(delta), rel=1e-6)
    rdp = dpa.rdp.RdpAccountant()
    rdp.compose(dpa.GaussianDpEvent(z))
    assert ag.epsilon_of(z, delta) < rdp.get_epsilon(delta)  # tighter than RDP's conversion


def test_analytic_gaussian_calibration_and_composition():
    z = ag.noise_multiplier(1.0, 1e-5)
    assert ag.epsilon_of(z, 1e-5) <= 1.0 < ag.epsilon_of(z * 0.999, 1e-5)
    # two releases at z compose to one at z / sqrt 2, as dp-accounting's PLD composes them
    pld = dpa.pld.PLDAccountant()
    pld.compose(dpa.GaussianDpEvent(z), 2)
    assert ag.epsilon_of(ag.composed([z, z]), 1e-5) == pytest.approx(pld.get_epsilon(1e-5), rel=1e-4)
    assert np.isinf(ag.composed([]))


def test_secure_is_the_default_on_the_deployment_engine_only_and_the_progress_line_says_reproducible():
    from server.records import progress_line
    from simulation.config import ExperimentConfig

    assert ExperimentConfig.model_validate({"engine": {"name": "deployment"}}).randomness_mode == "secure"
    assert ExperimentConfig().randomness_mode == "reproducible"
    assert ExperimentConfig.model_validate({"randomness": "secure"}).randomness_mode == "secure"
    row = {"round": 1, "round_s": 1.0, "central.accuracy": 0.5, "central.macro_f1": 0.4, "fit.FI.epsilon": 2.0}
    assert "[noise reproducible from config]" in progress_line(row, 3, "reproducible")
    assert "reproducible" not in progress_line(row, 3, "secure")

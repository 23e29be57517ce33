"""Federated runs through `ppml run` on the local engine: results, determinism, failures, configs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import clients.app
import clients.nso_client
from simulation.cli import main
from simulation.config import load_config

SMALL = ["--set", "data.generate.nsos=['FI','NL','PL']", "--set", "data.generate.persons_scale=0.3",
         "--set", "federation.rounds=3", "--quiet"]


def _run(tmp_path, name: str, *extra: str) -> tuple[int, object]:
    out = tmp_path / name
    code = main(["run", *SMALL, "--set", f"output.dir={tmp_path / 'runs'}", "--out", str(out), *extra])
    return code, out


def test_full_local_run_writes_a_complete_run_directory(tmp_path):
    code, out = _run(tmp_path, "a")
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    f = s["final"]
    assert s["rounds_completed"] == 3 and s["engine"] == "local"
    assert f["accuracy"] > 0.5 and f["macro_f1"] > 0.25  # chance is 1/13
    assert f["accuracy"] > s["initial"]["accuracy"] + 0.3  # it learned
    assert set(f["per_nso_accuracy"]) == {"FI", "NL", "PL"}
    assert all(0 < v <= 1 for v in f["per_nso_accuracy"].values())
    assert 0 < f["wellbeing_mae"] < 2.5 and s["timing"]["wall_s"] > 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["round"]) == [0, 1, 2, 3]
    man = json.loads((out / "manifest.json").read_text())
    assert man["data_fingerprint"] == s["data_fingerprint"] and man["versions"]["flwr"] == "1.41.0"
    assert man["engine"] == "local" and man["seed"] == 0 and "git" in man and "machine" in man
    # the resolved config reproduces the run's settings
    cfg = load_config(out / "config.toml")
    assert cfg.federation.rounds == 3 and cfg.data.generate.nsos == ["FI", "NL", "PL"]


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    assert _run(tmp_path, "a")[0] == 0 and _run(tmp_path, "b")[0] == 0
    a = pd.read_csv(tmp_path / "a" / "metrics.csv").drop(columns=["round_s", "elapsed_s"])
    b = pd.read_csv(tmp_path / "b" / "metrics.csv").drop(columns=["round_s", "elapsed_s"])
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert _run(tmp_path, "c", "--set", "seed=1")[0] == 0
    c = pd.read_csv(tmp_path / "c" / "metrics.csv")
    assert c["central.accuracy"].iloc[-1] != a["central.accuracy"].iloc[-1]


def test_a_failing_client_fails_the_run_with_its_reason(tmp_path, monkeypatch, capsys):
    original_fit = clients.nso_client.NSOClient.fit

    def fit(self, parameters, config):
        if self.nso == "NL" and int(config["server_round"]) == 2:
            raise RuntimeError("disk full while training")
        return original_fit(self, parameters, config)

    monkeypatch.setattr(clients.nso_client.NSOClient, "fit", fit)
    code, out = _run(tmp_path, "f", "--set", "engine.local_workers=1")  # the patched client lives in this process
    err = capsys.readouterr().err
    assert code == 2
    assert "round 2: 1 NSO(s) failed during training" in err and "NSO NL" in err and "disk full" in err
    assert "Traceback" not in err
    assert not (out / "summary.json").exists()  # no metrics of an incomplete run are reported as final
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["round"] for x in lines if "round" in x] == [0, 1]  # rounds 0 and 1 were kept
    assert lines[-1]["event"] == "failed" and "disk full" in lines[-1]["reason"]


@pytest.mark.parametrize("strategy", ["fedprox", "fedadam"])
def test_other_strategies_and_centralized_run(tmp_path, strategy):
    code, out = _run(tmp_path, strategy, "--set", f"federation.strategy={strategy}", "--set", "federation.rounds=2")
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["final"]["accuracy"] > 0.3


def test_centralized_engine(tmp_path, capsys):
    code, out = _run(tmp_path, "c", "--set", "engine.name=centralized")
    s = json.loads((out / "summary.json").read_text())
    assert code == 0 and s["engine"] == "centralized" and s["final"]["accuracy"] > 0.5
    # this small federation's held-out set is a handful of persons: the run says its figures are noise
    assert any("held-out set holds" in w and "data.holdout_fraction" in w for w in s["warnings"])
    assert "warning: the held-out set holds" in capsys.readouterr().err


@pytest.mark.parametrize("override, expected", [
    ("federation.strategy=fedsgd", "federation.strategy: Input should be 'fedavg', 'fedprox' or 'fedadam'"),
    ("federation.rounds=0", "federation.rounds: Input should be greater than or equal to 1"),
    ("training.lr=-1", "training.lr: Input should be greater than 0"),
    ("engine.name=spark", "engine.name: Input should be 'local', 'ray', 'centralized' or 'deployment'"),
    ("training.batchsize=64", "unknown key 'training.batchsize'"),
    ("model.layers='two'", "model.layers: Input should be a valid integer"),
])
def test_bad_run_configs_fail_before_anything_runs(tmp_path, capsys, override, expected):
    code, out = _run(tmp_path, "bad", "--set", override)
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err
    assert not out.exists()


def test_existing_run_directory_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("results")
    code, _ = _run(tmp_path, "x")
    assert code == 2 and "exists and is not empty" in capsys.readouterr().err


def test_server_fails_clearly_when_an_nso_node_never_connects():
    from server.workflow import wait_for_nodes
    from server.strategy import RoundFailed
    from simulation.engines.local_grid import LocalGrid

    grid = LocalGrid(clients.app.make_client_app(), {1: None, 2: None}, run_id=1)
    with pytest.raises(RoundFailed, match="only 2 of 3 NSO nodes connected within 0.5 s"):
        wait_for_nodes(grid, 3, 0.5)
    wait_for_nodes(grid, 2, 0.5)  # all there: returns at once


@pytest.mark.parametrize("privacy", [{}, {"enabled": True, "noise_multiplier": 1.0, "unit": "person"}])
def test_local_engine_with_worker_processes_gives_bit_identical_results(tmp_path, privacy):
    """NSOs trained in worker processes (every core) give exactly the numbers of the sequential order."""
    import numpy as np

    from datasets.prepared import prepare
    from datasets.synthetic.generator import GeneratorSettings, generate
    from simulation.config import ExperimentConfig
    from simulation.engines.local import run_local
    from simulation.experiment import app_run_config

    windows = generate(GeneratorSettings(nsos=["FI", "NL", "PL"], persons_scale=0.3)).windows
    prepare(windows, tmp_path / "data", 0, 0.2, 0.1)
    cfg = ExperimentConfig.model_validate({"federation": {"rounds": 2}, "privacy": privacy})
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        run_local(app_run_config(cfg, str(tmp_path / "data"), str(out), quiet=True), str(tmp_path / "data"),
                  workers=workers)
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        runs[workers] = ([{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows], dict(np.load(out / "model.npz")))
    assert runs[1][0] == runs[2][0]
    assert all(np.array_equal(runs[1][1][k], runs[2][1][k]) for k in runs[1][1])

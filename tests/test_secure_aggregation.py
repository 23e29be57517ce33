"""SecAgg+ in every round: exact aggregates, hidden updates, dropouts, and no silent failure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.quantization import quantize
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

import clients.app
import clients.nso_client
from datasets.synthetic.generator import GeneratorSettings, generate
from datasets.prepared import prepare
from simulation.cli import main
from simulation.config import ExperimentConfig
from simulation.engines.local import run_local
from simulation.experiment import app_run_config

NSOS = "['FI','NL','PL','ES']"


def _run(tmp_path, name, *extra, nsos=NSOS, rounds=1):
    out = tmp_path / name
    code = main(["run", "--set", f"data.generate.nsos={nsos}", "--set", "data.generate.persons_scale=0.5",
                 "--set", f"federation.rounds={rounds}", "--set", f"output.dir={tmp_path / 'runs'}", "--quiet",
                 "--out", str(out), *extra])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    model = dict(np.load(out / "model.npz")) if (out / "model.npz").exists() else None
    return code, summary, model


def _max_diff(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.mark.parametrize("dp", [False, True])
def test_secagg_aggregate_equals_fedavg_within_quantization_error(tmp_path, dp):
    extra = ["--set", "privacy.enabled=true", "--set", "privacy.noise_multiplier=1.0"] if dp else []
    code, plain, plain_model = _run(tmp_path, "plain", *extra)
    assert code == 0
    code, sec, sec_model = _run(tmp_path, "secagg", "--set", "secure_aggregation.enabled=true", *extra)
    assert code == 0
    s = sec["secure_aggregation"]
    assert s["enabled"] and s["rounds_completed"] == 1 and s["clipped_values"] == 0 and s["dropped"] == []
    assert s["num_shares"] == 4 and s["threshold"] == 2
    assert 0 < s["quantization_error"] < 1e-5
    diff = _max_diff(plain_model, sec_model)
    assert diff <= s["quantization_error"] + 1e-6  # + float32 rounding of the weights
    assert diff > 0  # it really went through quantization


def test_server_sees_only_masked_vectors_and_the_aggregate_is_exact(tmp_path, monkeypatch):
    windows = generate(GeneratorSettings(nsos=["FI", "NL", "PL"], persons_scale=0.5)).windows
    data_dir = tmp_path / "data"
    prepare(windows, data_dir, 0, 0.2, 0.1)
    true_updates: dict[str, list[np.ndarray]] = {}
    original = clients.nso_client.NSOClient._reply

    def spy(self, global_weights, num_examples, metrics, config):
        reply = original(self, global_weights, num_examples, metrics, config)
        true_updates[self.nso] = reply[0]
        return reply

    monkeypatch.setattr(clients.nso_client.NSOClient, "_reply", spy)
    cfg = ExperimentConfig.model_validate({"federation": {"rounds": 1}, "secure_aggregation": {"enabled": True}})
    grid = run_local(app_run_config(cfg, str(data_dir), str(tmp_path / "run"), quiet=True), str(data_dir),
                     record_replies=True)

    masked = []
    for msg in grid.received:
        if not msg.has_content():
            continue
        records = msg.content.config_records.get(RECORD_KEY_CONFIGS)
        if records is not None and Key.MASKED_PARAMETERS in records:
            masked.append(np.concatenate([bytes_to_ndarray(b).ravel().astype(np.float64)
                                          for b in records[Key.MASKED_PARAMETERS]])[1:])  # [0] is the weight
        for arr in msg.content.array_records.values():
            assert len(arr) == 0  # no plain parameters travel next to the masked vector
    assert len(masked) == 3
    flat = {n: np.concatenate([d.ravel() for d in u]).astype(np.float64) for n, u in true_updates.items()}
    for vec in masked:
        for nso, upd in flat.items():
            r = np.corrcoef(vec, upd)[0, 1]
            assert abs(r) < 0.05, (nso, r)  # nothing of any NSO's update is visible
    # control: the same test sees an unmasked (only quantized) update at once
    control = np.concatenate([q.ravel() for q in quantize(true_updates["FI"], 1.0, 2**22)]).astype(np.float64)
    assert np.corrcoef(control, flat["FI"])[0, 1] > 0.99

    # the aggregate is exact: the new global model = initial + weighted mean of the true updates
    from clients.model import ModelConfig, build_model, get_weights
    from datasets.prepared import load_partition

    part = load_partition(str(data_dir), "FI")
    initial = get_weights(build_model(ModelConfig(), 0, part.n_features, len(part.labels)))
    n = {nso: len(load_partition(str(data_dir), nso).train) for nso in true_updates}
    expected = [w + sum(n[k] * true_updates[k][i] for k in n) / sum(n.values()) for i, w in enumerate(initial)]
    got = np.load(tmp_path / "run" / "model.npz")
    assert max(float(np.abs(got[f"arr_{i}"] - e).max()) for i, e in enumerate(expected)) < 2e-6


def test_dropout_above_threshold_aggregates_the_survivors(tmp_path):
    code, sec, sec_model = _run(tmp_path, "drop", "--set", "secure_aggregation.enabled=true",
                                "--set", "secure_aggregation.dropouts=[{nso='FI', stage='collect_masked_vectors', round=1}]")
    assert code == 0
    s = sec["secure_aggregation"]
    assert len(s["dropped"]) == 1 and "NSO FI dropped out at stage collect_masked_vectors" in s["dropped"][0]["reasons"][0]
    code, _, survivors_model = _run(tmp_path, "survivors", nsos="['NL','PL','ES']")
    assert code == 0
    assert _max_diff(sec_model, survivors_model) <= s["quantization_error"] + 1e-6


@pytest.mark.parametrize("stage", ["setup", "share_keys"])
def test_dropout_before_key_sharing_aggregates_the_survivors(tmp_path, stage):
    """Flower's workflow halts here (it asks the survivors for key shares nobody has)."""
    code, sec, sec_model = _run(tmp_path, "drop", "--set", "secure_aggregation.enabled=true",
                                "--set", f"secure_aggregation.dropouts=[{{nso='FI', stage='{stage}', round=1}}]")
    assert code == 0
    assert f"NSO FI dropped out at stage {stage}" in " ".join(sec["secure_aggregation"]["dropped"][0]["reasons"])
    code, _, survivors_model = _run(tmp_path, "survivors", nsos="['NL','PL','ES']")
    assert code == 0
    assert _max_diff(sec_model, survivors_model) <= sec["secure_aggregation"]["quantization_error"] + 1e-6


def test_dropout_below_threshold_fails_the_run_loudly(tmp_path, capsys):
    drops = ", ".join(f"{{nso='{n}', stage='share_keys', round=2}}" for n in ("FI", "NL", "PL"))
    code, summary, _ = _run(tmp_path, "fail", "--set", "secure_aggregation.enabled=true",
                            "--set", f"secure_aggregation.dropouts=[{drops}]", rounds=3)
    err = capsys.readouterr().err
    assert code == 2 and summary is None
    assert "round 2: secure aggregation halted at stage 'share_keys' with 1 of 4 NSOs active" in err
    assert "the model was not updated" in err
    rows = [json.loads(x) for x in (tmp_path / "fail" / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows if "round" in r] == [0, 1]  # round 1 kept, nothing after the failure


@pytest.mark.parametrize("override, expected", [
    ("secure_aggregation.num_shares=2", "an integer must be greater than 2"),
    ("secure_aggregation.reconstruction_threshold=1.5", "a float must be in (0, 1]"),
    ("secure_aggregation.dropouts=[{nso='XX', stage='setup', round=1}]", "names NSO(s) ['XX']"),
    ("secure_aggregation.dropouts=[{nso='FI', stage='later', round=1}]", "Input should be 'setup'"),
    ("secure_aggregation.max_weight=10.0", "is below NSO"),
    ("secure_aggregation.num_shares=7", "exceeds the 4 NSOs"),
])
def test_bad_secure_aggregation_configs(tmp_path, capsys, override, expected):
    code, _, _ = _run(tmp_path, "bad", "--set", "secure_aggregation.enabled=true", "--set", override)
    err = capsys.readouterr().err
    assert code == 2 and expected in err.replace("\n", " ") and "Traceback" not in err


def test_dropout_at_unmask_still_counts_the_vector_it_sent(tmp_path):
    """An NSO lost after sending its masked vector: its masks come from its neighbours' shares."""
    code, sec, sec_model = _run(tmp_path, "drop", "--set", "secure_aggregation.enabled=true",
                                "--set", "secure_aggregation.dropouts=[{nso='FI', stage='unmask', round=1}]")
    assert code == 0 and "stage unmask" in " ".join(sec["secure_aggregation"]["dropped"][0]["reasons"])
    code, _, all_model = _run(tmp_path, "all")
    assert code == 0
    assert _max_diff(sec_model, all_model) <= sec["secure_aggregation"]["quantization_error"] + 1e-6

"""CKKS aggregation (secure_aggregation.method = "ckks"): the same aggregate as SecAgg+, nothing
the server can read, dropouts survived or failed loudly, and CKKS's error kept out of the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tenseal as ts

import clients.nso_client
from clients.secure_aggregation import ckks, ckks_mod
from datasets.prepared import prepare
from datasets.synthetic.generator import GeneratorSettings, generate
from simulation.cli import main
from simulation.config import ExperimentConfig
from simulation.engines.local import run_local
from simulation.experiment import app_run_config
from tests.test_secure_aggregation import NSOS, _max_diff
from tests.test_secure_aggregation import _run as secagg_run

FED = ["--set", "privacy.enabled=true", "--set", "privacy.unit='person'", "--set", "privacy.scope='federation'",
       "--set", "privacy.target_epsilon=4"]


def _run(tmp_path, name, *extra, method="ckks", rounds=1):
    return secagg_run(tmp_path, name, "--set", "secure_aggregation.enabled=true",
                      "--set", f"secure_aggregation.method='{method}'", *extra, rounds=rounds)


def test_ckks_gives_secaggs_aggregate_and_is_deterministic(tmp_path):
    code, he, he_model = _run(tmp_path, "ckks")
    assert code == 0
    code, sec, sec_model = _run(tmp_path, "secagg", method="secaggplus")
    assert code == 0
    s = he["secure_aggregation"]
    assert s["method"] == "ckks" and s["rounds_completed"] == 1 and s["num_shares"] is None and s["bytes_up"] > 0
    assert s["quantization_error"] == sec["secure_aggregation"]["quantization_error"]
    assert 0 < s["ckks_error"] <= s["ckks_error_bound"] < 0.5  # CKKS's own error, measured, then rounded away
    # both round the same weighted updates with independent stochastic draws: within twice the bound
    assert 0 < _max_diff(he_model, sec_model) <= 2 * s["quantization_error"] + 1e-6
    assert _max_diff(he_model, _run(tmp_path, "again")[2]) == 0.0  # SEAL's randomness is rounded away


def test_federation_noise_shares_ride_in_the_ciphertexts(tmp_path):
    """Noise shares lie on SecAgg+'s grid (clients/privacy/noise_share.py), so both methods sum the
    same integers exactly: the models are identical, the noise included."""
    code, he, he_model = _run(tmp_path, "ckks", *FED, rounds=2)
    assert code == 0
    code, sec, sec_model = _run(tmp_path, "secagg", *FED, rounds=2, method="secaggplus")
    assert code == 0
    assert _max_diff(he_model, sec_model) == 0.0
    assert he["privacy"] == sec["privacy"] and he["privacy"]["epsilon"] > 0


def test_the_server_sees_only_ciphertexts_it_cannot_decrypt(tmp_path, monkeypatch):
    windows = generate(GeneratorSettings(nsos=["FI", "NL", "PL"], persons_scale=0.5)).windows
    data_dir = tmp_path / "data"
    prepare(windows, data_dir, 0, 0.2, 0.1)
    true_updates: dict[str, np.ndarray] = {}
    original = clients.nso_client.NSOClient._reply

    def spy(self, global_weights, num_examples, metrics, config):
        reply = original(self, global_weights, num_examples, metrics, config)
        true_updates[self.nso] = np.concatenate([d.ravel() for d in reply[0]])
        return reply

    monkeypatch.setattr(clients.nso_client.NSOClient, "_reply", spy)
    cfg = ExperimentConfig.model_validate({"federation": {"rounds": 1},
                                           "secure_aggregation": {"enabled": True, "method": "ckks"}})
    grid = run_local(app_run_config(cfg, str(data_dir), str(tmp_path / "run"), quiet=True), str(data_dir),
                     record_replies=True)
    records = [m.content.config_records[ckks_mod.RECORD] for m in grid.received
               if m.has_content() and ckks_mod.RECORD in m.content.config_records]
    public = ckks.load_context(next(r["public_context"] for r in records if "public_context" in r), secret=False)
    uploads = [r for r in records if "ciphertexts" in r]
    assert len(uploads) == 3 and len(true_updates) == 3
    for msg in grid.received:
        if not msg.has_content():
            continue
        for arr in msg.content.array_records.values():
            assert len(arr) == 0  # no plain parameters travel next to the ciphertexts
    for rec in uploads:
        with pytest.raises(ValueError, match="secret_key"):
            ts.ckks_vector_from(public, rec["ciphertexts"][0]).decrypt()
    for rec in records:  # the sealed secret contexts are no context to the server
        for sealed in rec.get("sealed", []):
            with pytest.raises(ckks.CkksError):
                ckks.load_context(sealed, secret=True)
    # control: the NSO's own key does decrypt an upload, to the quantized update
    secret = ckks.new_context(40)
    q = np.arange(10, dtype=np.float64)
    assert np.allclose(ckks.decrypt(secret, ckks.encrypt(secret, q), 10), q, atol=1e-6)


def test_a_dropout_while_training_aggregates_the_survivors(tmp_path):
    code, he, he_model = _run(tmp_path, "drop", "--set", "secure_aggregation.dropouts=[{nso='FI', stage='fit', round=1}]")
    assert code == 0
    s = he["secure_aggregation"]
    assert len(s["dropped"]) == 1 and "NSO FI dropped out at stage fit" in s["dropped"][0]["reasons"][0]


def test_a_decryptor_that_drops_is_replaced(tmp_path, capsys):
    attempts = []
    for survivor in ("FI", "ES"):  # one of them is not asked first
        drops = ", ".join(f"{{nso='{n}', stage='decrypt', round=1}}" for n in eval(NSOS) if n != survivor)
        code, he, _ = _run(tmp_path, survivor, "--set", f"secure_aggregation.dropouts=[{drops}]")
        assert code == 0 and he["secure_aggregation"]["rounds_completed"] == 1
        rows = [json.loads(line) for line in (tmp_path / survivor / "metrics.jsonl").read_text().splitlines()]
        attempts.append(rows[-1]["secagg.decrypt_attempts"])
    assert max(attempts) > 1
    drops = ", ".join(f"{{nso='{n}', stage='decrypt', round=1}}" for n in eval(NSOS))
    code, _, model = _run(tmp_path, "none", "--set", f"secure_aggregation.dropouts=[{drops}]")
    assert code != 0 and model is None and "no NSO decrypted the sum" in capsys.readouterr().err


@pytest.mark.parametrize("stage", ["keys", "install"])
def test_a_dropout_during_key_setup_fails_the_run_loudly(tmp_path, capsys, stage):
    drops = ", ".join(f"{{nso='{n}', stage='{stage}', round=1}}" for n in eval(NSOS))  # the key holder gets no install
    code, _, model = _run(tmp_path, "drop", "--set", f"secure_aggregation.dropouts=[{drops}]")
    err = capsys.readouterr().err
    assert code != 0 and model is None
    assert "CKKS aggregation stopped at stage 'keys'" in err and "the model was not updated" in err


def test_the_error_bound_keeps_ckks_out_of_the_rounded_sum():
    assert ckks.error_bound(16, 40) < 1e-4  # far below the one half that rounding tolerates
    ctx = ckks.new_context(40)
    parts = [ckks.encrypt(ctx, np.full(5000, 2.0 ** 22)) for _ in range(16)]
    total = ckks.decrypt(ctx, ckks.add(ctx, parts), 5000)
    assert np.abs(total - 16 * 2.0 ** 22).max() <= ckks.error_bound(16, 40)
    state = {"context": ckks.serialize(ctx, secret=True)}
    with pytest.raises(ckks.CkksError, match="not returned"):  # a sum too long for the bound is refused
        ckks_mod._decrypt(state, {"ciphertexts": ckks.add(ctx, parts), "size": 5000, "summands": 10**6,
                                  "scale_bits": 40})
    got = ckks_mod._decrypt(state, {"ciphertexts": ckks.add(ctx, parts), "size": 5000, "summands": 16,
                                    "scale_bits": 40})
    assert (ckks_mod.read_sum(got) == 16 * 2 ** 22).all()


def test_malformed_ciphertexts_and_keys_are_refused():
    ctx = ckks.new_context(40)
    with pytest.raises(ckks.CkksError, match="not a CKKS ciphertext"):
        ckks.add(ctx, [[b"garbage"], [b"garbage"]])
    with pytest.raises(ckks.CkksError, match="different numbers"):
        ckks.add(ctx, [ckks.encrypt(ctx, np.zeros(5000)), ckks.encrypt(ctx, np.zeros(10))])
    with pytest.raises(ckks.CkksError, match="holds a secret key"):
        ckks.load_context(ckks.serialize(ctx, secret=True), secret=False)
    with pytest.raises(ckks.CkksError, match="not sealed to this NSO"):
        ckks.unseal(ckks.seal(b"key", bytes(ckks.new_box_key().public_key)), bytes(ckks.new_box_key()))


@pytest.mark.parametrize("override, expected", [
    ("secure_aggregation.method='paillier'", "secure_aggregation.method"),
    ("secure_aggregation.dropouts=[{nso='FI', stage='unmask', round=1}]", "not stages of method 'ckks'"),
    ("secure_aggregation.ckks_scale_bits=20", "ckks_scale_bits"),
])
def test_bad_ckks_configs(tmp_path, capsys, override, expected):
    code, _, _ = _run(tmp_path, "bad", "--set", override)
    assert code == 2 and expected in capsys.readouterr().err


def test_ckks_under_the_deployment_engine_keeps_its_keys_and_leaks_nothing(tmp_path):
    """SuperNodes keep each NSO's keys in its node state between rounds; from the server's seat
    (the message log) nothing data-dependent travels in the clear."""
    from tests.test_deployment import BASE, _deploy
    from tests.test_nothing_in_clear import leaks, logged

    cfg = {**BASE, "secure_aggregation": {"enabled": True, "timeout_s": 60.0, "method": "ckks"}}
    proc = _deploy(tmp_path, "dep", cfg)
    assert proc.returncode == 0 and "LEFT 0" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "dep"
    dep = json.loads((out / "summary.json").read_text())
    assert dep["secure_aggregation"]["method"] == "ckks" and dep["secure_aggregation"]["rounds_completed"] == 2
    rows = {r.get("round"): r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    assert "secagg.stage_s.keys" in rows[1] and "secagg.stage_s.keys" not in rows[2]  # keys set up once
    index = {"windows": json.loads((out / "manifest.json").read_text())["windows"]}
    replies = logged(out / "messages.jsonl")
    assert len(replies) > 10 and leaks(replies, index, federation=False) == []

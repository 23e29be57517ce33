"""Unit tests of small pieces that end-to-end runs only cover indirectly: the config codec, the
delta policy, the constant-cost privacy ledger, the SecAgg+ ranges and the round recorder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.app import RecordDict
from opacus.accountants import RDPAccountant

from clients.privacy.accounting import RDP_ORDERS, PrivacyLedger, epsilon_of, resolve_delta, units_per_nso
from clients.privacy.config import PrivacyConfig
from clients.run_config import UNSET, flatten, nest, section, to_run_config
from clients.secure_aggregation.config import Dropout, SecureAggregationConfig
from clients.training import TrainingConfig, local_passes, local_steps
from datasets.errors import UserError
from server.records import RoundRecorder
from server.secure_aggregation import ADAM_STEP_BOUND, auto_ranges, quantization_error_bound
from server.strategy import RoundFailed

INDEX = {"nsos": ["A", "B"], "windows": {"A": {"train": 1000, "test": 100, "train_persons": 20},
                                         "B": {"train": 4000, "test": 300, "train_persons": 50}}}


def test_codec_round_trips_every_section_through_flowers_flat_scalars():
    sa = SecureAggregationConfig(enabled=True, dropouts=[Dropout(nso="A", stage="unmask", round=2)])
    pc = PrivacyConfig(enabled=True, target_epsilon=4.0)
    rc = to_run_config({"privacy": pc, "secure_aggregation": sa})
    assert all(isinstance(v, (bool, int, float, str)) for v in rc.values())  # what Flower accepts
    assert rc["privacy.delta"] == UNSET and rc["privacy.target_epsilon"] == 4.0
    assert section(rc, "privacy", PrivacyConfig) == pc
    assert section(rc, "secure_aggregation", SecureAggregationConfig) == sa
    assert nest(flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3})) == {"a": {"b": 1, "c": {"d": 2}}, "e": 3}


def test_codec_rejects_a_key_that_is_both_value_and_section_and_bad_values_by_name():
    with pytest.raises(ValueError, match="both as a value and as a section"):
        nest({"a": 1, "a.b": 2})
    with pytest.raises(UserError, match=r"privacy\.max_grad_norm"):
        section({"privacy.max_grad_norm": -1.0}, "privacy", PrivacyConfig)


def test_delta_policy_is_one_delta_for_all_nsos_below_every_1_over_n():
    units = units_per_nso(INDEX, "person")
    assert units == {"A": 20, "B": 50}
    assert resolve_delta(None, units, "person") == pytest.approx(0.1 / 50)
    assert resolve_delta(0.001, units, "person") == 0.001
    with pytest.raises(UserError, match="NSO B has n = 50"):
        resolve_delta(0.03, units, "person")
    assert units_per_nso(INDEX, "record") == {"A": 1000, "B": 4000}


def test_ledger_epsilon_is_bit_identical_to_opacus_over_the_whole_history():
    ledger = PrivacyLedger(RecordDict())
    history = [(1.1, 0.05, 20), (1.1, 0.05, 20), (0.9, 0.02, 50), (1.1, 0.05, 20)]
    for i, (s, q, n) in enumerate(history):
        after = ledger.epsilon_after(s, q, n, 1e-5, "rdp")
        ledger.add(s, q, n)
        acc = RDPAccountant()
        acc.history = history[: i + 1]
        assert after == acc.get_epsilon(1e-5, alphas=RDP_ORDERS)  # exactly, not approximately
        assert ledger.epsilon(1e-5, "rdp") == after
    assert ledger.history == history
    # PRV: identical entries composed into one agree with the entry-by-entry composition
    prv_merged = ledger.epsilon(1e-5, "prv")
    from opacus.accountants import PRVAccountant
    acc = PRVAccountant()
    acc.history = history
    assert prv_merged == pytest.approx(acc.get_epsilon(1e-5), rel=0.01)
    assert epsilon_of([], 1e-5, "rdp") == 0.0


def test_auto_ranges_bound_adam_deltas_and_refuse_a_max_weight_that_overflows():
    t = TrainingConfig(optimizer="adam", lr=0.01, batch_size=100, local_epochs=2, min_round_steps=0)
    max_weight, clip = auto_ranges(SecureAggregationConfig(enabled=True), INDEX, t, PrivacyConfig())
    assert max_weight == 4000.0
    assert clip == pytest.approx(ADAM_STEP_BOUND * 0.01 * 2 * 40)  # 40 batches of NSO B, 2 epochs
    # the default step minimum: B makes ceil(500 / 40) = 13 passes, the longest round of the two
    _, clip_min = auto_ranges(SecureAggregationConfig(enabled=True), INDEX, t.model_copy(update={"min_round_steps": 500}),
                              PrivacyConfig())
    assert clip_min == pytest.approx(ADAM_STEP_BOUND * 0.01 * 13 * 40)
    _, clip_sgd = auto_ranges(SecureAggregationConfig(enabled=True), INDEX, t.model_copy(update={"optimizer": "sgd"}),
                              PrivacyConfig())
    assert clip_sgd == 8.0
    with pytest.raises(RoundFailed, match="below NSO B's 4000"):
        auto_ranges(SecureAggregationConfig(enabled=True, max_weight=3000.0), INDEX, t, PrivacyConfig())


def test_a_round_takes_at_least_min_round_steps_steps_in_whole_passes():
    t = TrainingConfig(batch_size=10, local_epochs=2, min_round_steps=25)
    assert [local_passes(n, t) for n in (5, 30, 100, 1000)] == [25, 9, 3, 2]  # at least local_epochs
    assert [local_steps(n, t) for n in (0, 5, 30, 100, 1000)] == [0, 25, 27, 30, 200]
    assert local_passes(5, t.model_copy(update={"min_round_steps": 0})) == 2  # 0: exactly local_epochs
    assert TrainingConfig().min_round_steps == 500  # the default, chosen on validation (docs/federated.md)


def test_quantization_error_bound_shrinks_with_the_grid_and_grows_with_the_range():
    fine = quantization_error_bound([1000, 4000], 4000.0, 1.0, 2**22)
    coarse = quantization_error_bound([1000, 4000], 4000.0, 1.0, 2**12)
    assert fine < coarse
    assert quantization_error_bound([1000, 4000], 4000.0, 2.0, 2**22) == pytest.approx(2 * fine)
    # two NSOs, each off by less than one step 2c/Q, divided by the summed weight ratios 1.25
    assert fine == pytest.approx(2 * (2 / 2**22) / 1.25, rel=1e-6)
    assert quantization_error_bound([], 4000.0, 1.0, 2**22) == float("inf")


def test_round_recorder_appends_each_round_as_it_ends(tmp_path):
    rec = RoundRecorder(str(tmp_path), rounds=1, quiet=True)
    rec.central(0, {"accuracy": 0.1, "macro_f1": 0.05, "loss": 2.0})
    rec.fit([{"nso": "A", "steps": 3, "epsilon": 0.5}])
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["round"] == 0  # round 1 is not finished yet
    rec.central(1, {"accuracy": 0.5, "macro_f1": 0.4, "loss": 1.0})
    rec.federated([(10, {"nso": "A", "accuracy": 0.6, "macro_f1": 0.5, "wellbeing_mae": 1.0}),
                   (30, {"nso": "B", "accuracy": 0.2, "macro_f1": 0.1, "wellbeing_mae": 1.2})])
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[1]["round"] == 1 and rows[1]["fit.A.epsilon"] == 0.5
    assert rows[1]["federated.accuracy"] == pytest.approx((10 * 0.6 + 30 * 0.2) / 40)
    RoundRecorder.failure(str(tmp_path), "boom")
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1]) == {"event": "failed",
                                                                                       "reason": "boom"}
    rec.save_model([np.ones(3)])
    assert np.load(tmp_path / "model.npz")["arr_0"].tolist() == [1.0, 1.0, 1.0]


def test_flower_telemetry_is_off_before_flower_loads():
    """Flower posts usage events to its own server by default; nothing here may talk beyond 127.0.0.1."""
    import subprocess
    import sys

    code = "import simulation.cli, flwr.supercore.telemetry as t; print(t.FLWR_TELEMETRY_ENABLED)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={k: v for k, v in __import__("os").environ.items() if k != "FLWR_TELEMETRY_ENABLED"})
    assert out.stdout.strip() == "0", out.stderr


def test_a_round_whose_reply_was_lost_stays_in_the_privacy_history():
    """An NSO trained in round 1 but its reply timed out; its round-2 reply says it accounted 2 rounds."""
    from clients.privacy.accounting import epsilon_of
    from simulation.config import ExperimentConfig
    from simulation.results.summary import privacy_summary

    cfg = ExperimentConfig.model_validate({"privacy": {"enabled": True, "noise_multiplier": 1.0, "delta": 1e-5}})
    two = epsilon_of([(1.0, 0.05, 20)] * 2, 1e-5, "rdp")
    rows = [{"round": 1},
            {"round": 2, "fit.A.steps": 20, "fit.A.epsilon": two, "fit.A.sample_rate": 0.05,
             "fit.A.noise_multiplier": 1.0, "fit.A.rounds_accounted": 2}]
    p = privacy_summary(cfg, rows, ["A"])
    hist = p["history"]["A"]
    assert [h["round"] for h in hist] == [None, 2] and hist[0]["reply_lost"]
    assert epsilon_of([(h["noise_multiplier"], h["sample_rate"], h["steps"]) for h in hist], 1e-5, "rdp") == \
        pytest.approx(p["per_nso_epsilon_accounted"]["A"], rel=1e-12)


class _SlowGrid:
    """Replies to message i become available after `ready[i]` pulls; 'lost' never."""

    def __init__(self, ready: list[int | None]) -> None:
        self.ready, self.pulls = ready, 0

    def push_messages(self, messages):
        return [f"m{i}" for i, _ in enumerate(messages)]

    def pull_messages(self, ids):
        self.pulls += 1
        out = []
        for mid in list(ids):
            due = self.ready[int(mid[1:])]
            if due is not None and self.pulls >= due:
                out.append(type("Reply", (), {"metadata": type("M", (), {"reply_to_message_id": mid})()})())
        return out


def test_polling_grid_returns_every_reply_as_soon_as_the_last_arrives_and_honours_its_timeout():
    import time

    from server.workflow import POLL_S, PollingGrid

    grid = _SlowGrid([1, 3, 2])
    replies = PollingGrid(grid).send_and_receive([object()] * 3)
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1", "m2"]
    assert grid.pulls == 3  # stopped pulling at once, no further sleep
    start = time.monotonic()
    lost = PollingGrid(_SlowGrid([1, None]), timeout=0.3).send_and_receive([object()] * 2)
    assert [r.metadata.reply_to_message_id for r in lost] == ["m0"]  # the lost reply is missing, not waited for
    assert 0.3 <= time.monotonic() - start < 0.3 + 10 * POLL_S


class _StuckGrid(_SlowGrid):
    """m1's reply is listed but its objects never finish downloading (its SuperNode died mid-upload)."""

    def __init__(self, ready, stuck: str = "m1", fail: str | None = None) -> None:
        super().__init__(ready)
        self.stuck, self.fail = stuck, fail

    def pull_messages(self, ids):
        import time

        if self.stuck in ids:
            time.sleep(30)
        if self.fail in ids:
            raise ConnectionError("SuperLink gone")
        return super().pull_messages(ids)


def test_polling_grid_over_a_superlink_loses_only_the_reply_stuck_in_a_dead_nodes_upload():
    import time

    from server.workflow import POLL_S, PollingGrid

    start = time.monotonic()
    replies = PollingGrid(_StuckGrid([1, 1, 2]), timeout=1.0, pull_each=True).send_and_receive([object()] * 3)
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0", "m2"]  # in message order, m1 missing
    assert time.monotonic() - start < 1.0 + 10 * POLL_S  # not held by m1's 30 s download
    assert PollingGrid(_SlowGrid([1, 1, 1]), pull_each=True).send_and_receive([object()] * 3)  # no timeout: waits for all
    unpushed = _SlowGrid([1, 1])
    unpushed.push_messages = lambda messages: ["m0", None]  # Flower's mark of a message it could not push
    assert [r.metadata.reply_to_message_id for r in PollingGrid(unpushed, timeout=1.0, pull_each=True)
            .send_and_receive([object()] * 2)] == ["m0"]
    with pytest.raises(ConnectionError, match="SuperLink gone"):  # a failing SuperLink fails the stage loudly
        PollingGrid(_StuckGrid([1, 1], stuck="none", fail="m1"), timeout=1.0, pull_each=True).send_and_receive(
            [object()] * 2)


def test_secagg_training_stage_waits_its_own_timeout_and_key_stages_theirs():
    from server.secure_aggregation import CheckedSecAggPlusWorkflow

    wf = CheckedSecAggPlusWorkflow(num_shares=3, reconstruction_threshold=2, timeout=15.0, train_timeout=90.0)
    seen = {}
    wf._stage_s = {}
    for stage in ("setup", "share_keys", "collect_masked_vectors", "unmask"):
        wf._track(stage, lambda g, c, s, st=stage: seen.setdefault(st, wf.timeout) is not None, None, None, None)
    assert seen == {"setup": 15.0, "share_keys": 15.0, "collect_masked_vectors": 90.0, "unmask": 15.0}
    assert CheckedSecAggPlusWorkflow(num_shares=3, reconstruction_threshold=2, timeout=15.0).train_timeout == 15.0


def test_the_supernode_launcher_shortens_only_flowers_polling_sleeps(monkeypatch):
    import flwr.supernode.start_client_internal as loop

    from simulation.engines import supernode

    slept = []
    monkeypatch.setattr(supernode._time, "sleep", slept.append)
    monkeypatch.setattr(loop, "time", loop.time)  # undone after the test
    supernode.patch(0.05)
    for seconds in (3, 0.5, 1.0):
        loop.time.sleep(seconds)
    assert slept == [0.05, 0.05, 1.0] and loop.time.monotonic() > 0  # other calls reach the real module
    assert supernode.poll_from_env({}) == 0.1 and supernode.poll_from_env({"FLWR_SUPERNODE_IDLE_POLL_S": "0.5"}) == 0.5
    for bad in ("0", "-1", "fast", "nan"):
        with pytest.raises(SystemExit, match="must be a number of seconds above 0"):
            supernode.poll_from_env({"FLWR_SUPERNODE_IDLE_POLL_S": bad})


def test_flowers_object_pulls_retry_sooner_and_a_changed_signature_is_refused():
    import functools
    import types

    from clients.object_retry import OBJECT_RETRY_S, retry_objects_sooner

    mod = types.ModuleType("fake_flwr")
    mod.pull = lambda ids, *, initial_backoff=1.0: initial_backoff
    retry_objects_sooner(mod, "pull")
    retry_objects_sooner(mod, "pull")  # twice in one process: still one partial, not nested
    assert isinstance(mod.pull, functools.partial) and not isinstance(mod.pull.func, functools.partial)
    assert mod.pull([]) == OBJECT_RETRY_S
    mod.changed = lambda ids: None
    with pytest.raises(RuntimeError, match="no longer takes initial_backoff"):
        retry_objects_sooner(mod, "changed")

"""Every message the server receives in a DP run, read from the server's seat: nothing that depends
on an NSO's data may travel outside the SecAgg+ payload or a DP release (issue 19, item 3).

The same check reads the message log a ServerApp keeps under any engine (output.message_log; the
Ray and deployment tests apply it to their DP runs). It lists what it finds, so it can fail: the control run without DP sends its training loss
and evaluation in the clear, and the check must say so."""

from __future__ import annotations

import json
import math

import pytest
from flwr.common.secure_aggregation.secaggplus_constants import Key

from datasets.prepared import prepare, read_index
from datasets.synthetic.generator import GeneratorSettings, generate
from simulation.config import ExperimentConfig
from simulation.engines.local import run_local
from simulation.experiment import app_run_config
from server.message_log import PROTOCOL_RECORD, describe
from simulation.results.local_logs import with_local_logs

# Fit metrics a server may read: the configuration, the accountant's bookkeeping, and the NSO's
# size, which the data index (public) already gives.
PUBLIC_FIT = {"nso", "noise_multiplier", "sample_rate", "delta", "units", "max_grad_norm", "steps", "epsilon",
              "budget_exhausted", "rounds_accounted", "noise_std"}
SECAGG_KEYS = {str(v) for k, v in vars(Key).items() if not k.startswith("_") and isinstance(v, str)}
NSOS = ["FI", "NL", "PL"]


def leaks(replies: list[dict], index: dict, federation: bool) -> list[str]:
    """Every data-dependent field among the replies (server/message_log.py's view of each), as
    `message type: record.key = value`."""
    found = []
    for m in replies:
        kind = m["type"]
        found += [f"{kind}: {name} carries {n} plain arrays" for name, n in m["arrays"].items() if n]
        for name, rec in m["configs"].items():
            if name == PROTOCOL_RECORD:
                found += [f"{kind}: {name}.{k} is not a SecAgg+ field" for k in rec if k not in SECAGG_KEYS]
            elif name.endswith(".metrics"):
                nso = str(rec.get("nso"))
                for k, v in rec.items():
                    if kind == "evaluate" and k != "nso" or kind != "evaluate" and k not in PUBLIC_FIT:
                        found.append(f"{kind}: {name}.{k} = {v}")
                    elif k == "units" and v not in (index["windows"][nso]["train"], index["windows"][nso]["train_persons"]):
                        found.append(f"{kind}: units = {v} is not the index's count for {nso}")
        for name, rec in m["metrics"].items():
            for k, v in rec.items():
                if name == "evaluateres.loss":
                    if v is not None and not math.isnan(float(v)):  # the log writes NaN as null
                        found.append(f"{kind}: {name}.{k} = {v}")
                elif name.endswith("num_examples"):
                    public = {1} if federation and kind != "evaluate" else {
                        c["train"] if kind != "evaluate" else c["test"] for c in index["windows"].values()}
                    if v not in public:
                        found.append(f"{kind}: {name}.{k} = {v} is neither 1 nor an index count")
                else:
                    found.append(f"{kind}: {name}.{k} = {v}")
    return found


def logged(path) -> list[dict]:
    """The replies a run's ServerApp logged (output.message_log = true), under any engine."""
    return [json.loads(x) for x in path.read_text().splitlines()]


def captured(grid) -> list[dict]:
    return [d for d in map(describe, grid.received) if d is not None]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("clear") / "data"
    prepare(generate(GeneratorSettings(nsos=NSOS, persons_scale=0.3)).windows, out, 0, 0.2, 0.1)
    return out


def _capture(data_dir, out, settings: dict):
    cfg = ExperimentConfig.model_validate({"federation": {"rounds": 2}, "secure_aggregation": {"enabled": True},
                                           **settings})
    return run_local(app_run_config(cfg, str(data_dir), str(out), quiet=True), str(data_dir), record_replies=True)


@pytest.mark.parametrize("privacy", [
    {"enabled": True, "noise_multiplier": 1.0},
    {"enabled": True, "unit": "person", "noise_multiplier": 1.0},
    {"enabled": True, "unit": "person", "scope": "federation", "target_epsilon": 4.0},
], ids=["nso-record", "nso-person", "federation"])
def test_a_dp_run_sends_nothing_data_dependent_in_the_clear(data_dir, tmp_path, privacy):
    grid = _capture(data_dir, tmp_path / "run", {"privacy": privacy})
    index = read_index(data_dir)
    assert len(grid.received) > 10
    assert leaks(captured(grid), index, privacy.get("scope") == "federation") == []
    # the NSOs kept their diagnostics and evaluation, and the simulation still reports them
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"round"' in x]
    assert not any(k.startswith("nso.") or k.endswith(".train_loss") for r in rows for k in r)
    merged = with_local_logs(rows, tmp_path / "run", NSOS)
    assert all(0 <= merged[-1][f"nso.{n}.macro_f1"] <= 1 for n in NSOS)
    assert 0 <= merged[-1]["federated.macro_f1"] <= 1
    if privacy.get("scope") != "federation":
        assert all(f"fit.{n}.train_loss" in merged[-1] and f"fit.{n}.mean_batch_units" in merged[-1] for n in NSOS)


def test_the_check_finds_what_a_run_without_dp_sends_in_the_clear(data_dir, tmp_path):
    found = leaks(captured(_capture(data_dir, tmp_path / "plain", {})), read_index(data_dir), False)
    text = "\n".join(found)
    assert "fitres.metrics.train_loss" in text and "evaluateres.metrics.accuracy" in text
    assert "evaluateres.loss.loss" in text and "fitres.metrics.secagg_clipped" in text

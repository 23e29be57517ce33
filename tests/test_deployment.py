"""The deployment engine: SuperLink + one SuperNode per NSO with TLS and SuperNode authentication.

Every run happens in a fresh network namespace with only loopback and a fresh PID namespace, so
nothing can reach another address and nothing started can outlive the test.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from simulation.cli import main

ROOT = Path(__file__).resolve().parents[1]
# reproducible noise (deployment's default is secure) so that the run compares with the local engine's
BASE = {"randomness": "reproducible", "data": {"generate": {"nsos": ["FI", "NL", "PL"], "persons_scale": 0.3}},
        "federation": {"rounds": 2},
        "privacy": {"enabled": True, "noise_multiplier": 1.0},
        "secure_aggregation": {"enabled": True, "timeout_s": 60.0}}

DRIVER = textwrap.dedent(r"""
    import json, subprocess, sys
    from simulation.config import ExperimentConfig
    from simulation.experiment import run_experiment
    from simulation.engines.deployment import DeploymentEngine
    from datasets.errors import UserError
    cfg = ExperimentConfig.model_validate(json.loads(sys.argv[1]))
    engine = DeploymentEngine(
        extra_supernodes=["ROGUE"] if "rogue" in sys.argv[3] else None,
        after_round=(1, lambda procs: procs.kill("supernode-PL")) if "kill" in sys.argv[3] else None)
    code = 0
    try:
        run_experiment(cfg, sys.argv[2], quiet=True, engine=engine)
    except UserError as exc:
        print("ERROR", exc)
        code = 2
    import os
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:2]
        except OSError:
            continue
        if any(os.path.basename(a.decode()).startswith(("flower-super", "flwr")) for a in argv):
            left.append(b" ".join(argv).decode())
    print("LEFT", len(left), left)
    sys.exit(code)
""")


def _deploy(tmp_path, name, cfg, mode="plain"):
    assert shutil.which("unshare") and shutil.which("ip"), "unshare and ip (util-linux, iproute2) are needed"
    cfg = {**cfg, "output": {"dir": str(tmp_path / "runs"), "message_log": True}, "engine": {"name": "deployment"}}
    cmd = [sys.executable, "-c", DRIVER, json.dumps(cfg), str(tmp_path / name), mode]
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c",
                           "ip link set lo up && cd " + shlex.quote(str(ROOT)) + " && exec " + shlex.join(cmd)],
                          capture_output=True, text=True, timeout=900)
    return proc


def test_deployment_refuses_unregistered_supernodes_survives_a_killed_one_and_matches_local(tmp_path):
    """One federation (a SuperLink and SuperNodes cost most of a minute to start): an unregistered
    SuperNode is refused, PL's SuperNode is killed after round 1 and round 2 goes on without it."""
    # key stages wait 15 s (PL is gone for good in round 2), training and evaluation up to 90 s
    cfg = {**BASE, "federation": {"rounds": 2, "reply_timeout_s": 90.0},
           "secure_aggregation": {"enabled": True, "timeout_s": 15.0}}
    proc = _deploy(tmp_path, "dep", cfg, mode="rogue,kill")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "LEFT 0" in proc.stdout  # every process the engine started was stopped
    out = tmp_path / "dep"
    dep = json.loads((out / "summary.json").read_text())
    assert dep["engine"] == "deployment" and dep["rounds_completed"] == 2

    # the unregistered SuperNode was refused by the SuperLink
    rogue = (out / "deployment" / "logs" / "supernode-ROGUE.log").read_text()
    assert "Failed to activate SuperNode" in rogue
    # each SuperNode held only its own NSO's data
    for nso in ("FI", "NL", "PL"):
        assert [p.name for p in (out / "deployment" / "data" / nso).iterdir()] == [f"nso-{nso}.npz"]

    # the killed SuperNode was a SecAgg+ dropout: round 2 went on with the two others
    sa = dep["secure_aggregation"]
    assert sa["rounds_completed"] == 2
    assert [d for d in sa["dropped"] if d["round"] == 2], sa["dropped"]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    round2 = next(r for r in rows if r.get("round") == 2)
    assert round2["secagg.active"] == 2 and round2["secagg.sampled"] == 3
    # PL could not evaluate either; the others' evaluation stayed in their local logs (a DP run)
    merged = pd.read_csv(out / "metrics.csv").set_index("round")
    assert merged["nso.PL.accuracy"].isna()[2] and merged["nso.FI.accuracy"].notna()[2]
    assert not any(k.startswith("nso.") for k in round2)
    # from the server's seat, under the deployment engine: nothing data-dependent in the clear
    from tests.test_nothing_in_clear import leaks, logged

    index = {"windows": json.loads((out / "manifest.json").read_text())["windows"]}
    replies = logged(out / "messages.jsonl")
    assert len(replies) > 10 and leaks(replies, index, federation=False) == []

    # same numbers as the local engine with PL dropping out at the same point: DP accounting
    # identical (each node's ledger lives in its SuperNode), metrics within SecAgg+ rounding noise
    local_cfg = tmp_path / "local.toml"
    import tomli_w

    # PL dies when round 1's line appears, within about 0.05 s, so round 2's setup may already have
    # reached it (in CI its reply was cut mid-upload). Wherever in round 2 before its masked vector it
    # dies, the server sees the same: no reply of PL's in round 2, as with a dropout at setup
    dropout = [{"nso": "PL", "stage": "setup", "round": 2}]
    local_cfg.write_text(tomli_w.dumps({**cfg, "secure_aggregation": {**cfg["secure_aggregation"], "dropouts": dropout},
                                        "output": {"dir": str(tmp_path / "runs")}}))
    assert main(["run", str(local_cfg), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert dep["privacy"]["history"] == local["privacy"]["history"]
    assert dep["privacy"]["per_nso_epsilon"] == pytest.approx(local["privacy"]["per_nso_epsilon"], rel=1e-12)
    assert [h["round"] for h in dep["privacy"]["history"]["FI"]] == [1, 2]  # accounted across both rounds
    assert abs(dep["final"]["accuracy"] - local["final"]["accuracy"]) < 0.02

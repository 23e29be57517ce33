"""The ray engine (Flower's Simulation Engine) agrees with the local engine.

Ray binds and probes non-loopback addresses by default, so the ray run happens in a fresh network
namespace that has only loopback (`unshare -n`, then `lo` up): nothing can leave this machine.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from simulation.cli import main

ARGS = ["--set", "data.generate.nsos=['FI','NL','PL']", "--set", "data.generate.persons_scale=0.3",
        "--set", "federation.rounds=2", "--quiet",
        # one pass per round: engines agree to float rounding, which hundreds of steps would amplify
        "--set", "training.min_round_steps=0"]


def test_ray_engine_matches_local_engine(tmp_path):
    assert shutil.which("unshare") and shutil.which("ip"), "unshare and ip (util-linux, iproute2) are needed"
    runs = tmp_path / "runs"
    assert main(["run", *ARGS, "--set", f"output.dir={runs}", "--out", str(tmp_path / "local")]) == 0
    cmd = [sys.executable, "-m", "simulation.cli", "run", *ARGS, "--set", f"output.dir={runs}",
           "--set", "engine.name=ray", "--out", str(tmp_path / "ray")]
    script = "ip link set lo up && exec " + shlex.join(cmd)
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    local = pd.read_csv(tmp_path / "local" / "metrics.csv")
    ray = pd.read_csv(tmp_path / "ray" / "metrics.csv")
    cols = [c for c in local.columns if c.startswith(("central.", "nso."))]
    assert len(cols) > 10 and list(ray["round"]) == [0, 1, 2]
    # Same apps, same seeds; only the order in which replies arrive (and so float summation) may differ.
    diff = (local[cols] - ray[cols]).abs().max().max()
    assert diff < 1e-4, diff


def test_ray_engine_runs_secure_aggregation_with_dp_on_a_declared_schema(tmp_path, declared_dir):
    """Data with its own sensors and labels (conftest.DECLARED_SCHEMA), through Ray, DP and SecAgg+."""
    runs = tmp_path / "runs"
    extra = ["--set", "secure_aggregation.enabled=true", "--set", "privacy.enabled=true",
             "--set", "privacy.noise_multiplier=1.0", "--set", f"data.path='{declared_dir}'"]
    assert main(["run", *ARGS, *extra, "--set", f"output.dir={runs}", "--out", str(tmp_path / "local")]) == 0
    cmd = [sys.executable, "-m", "simulation.cli", "run", *ARGS, *extra, "--set", f"output.dir={runs}",
           "--set", "engine.name=ray", "--set", "output.message_log=true", "--out", str(tmp_path / "ray")]
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c",
                           "ip link set lo up && exec " + shlex.join(cmd)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    ray = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert ray["secure_aggregation"]["rounds_completed"] == 2 and ray["secure_aggregation"]["dropped"] == []
    assert ray["data"]["schema"] == "smartwatch-study" and list(ray["final"]["per_class_f1"]) == \
        ["asleep", "sedentary", "active", "moving"]
    assert ray["privacy"]["per_nso_epsilon"] == pytest.approx(local["privacy"]["per_nso_epsilon"], rel=1e-9)
    # from the server's seat, under Ray: nothing data-dependent in the clear (tests/test_nothing_in_clear.py)
    from tests.test_nothing_in_clear import leaks, logged

    index = {"windows": json.loads((tmp_path / "ray" / "manifest.json").read_text())["windows"]}
    replies = logged(tmp_path / "ray" / "messages.jsonl")
    assert len(replies) > 10 and leaks(replies, index, federation=False) == []
    # SecAgg+'s stochastic rounding draws from each process's own generator: not bit-identical
    assert abs(ray["final"]["accuracy"] - local["final"]["accuracy"]) < 0.02

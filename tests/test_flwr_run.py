"""`flwr run .` runs the same apps through a real SuperLink (simulation mode) and matches `local`.

The SuperLink is started as DESIGN.md says it must be offline (--disable-runtime-dependency-
installation), on 127.0.0.1, inside a fresh network namespace with only loopback and a fresh PID
namespace, so that every process it starts (simulation runtime, Ray) ends with the test.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from datasets.synthetic.generator import GeneratorSettings, generate
from datasets.prepared import prepare
from simulation.config import ExperimentConfig
from simulation.engines.local import run_local
from simulation.experiment import app_run_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SCRIPT = r"""
set -u
ip link set lo up
export PATH="$BIN:$PATH" FLWR_HOME="$TMP/flwr-home" RAY_DISABLE_USAGE_STATS=1 FLWR_TELEMETRY_ENABLED=0
flower-superlink --insecure --simulation --isolation subprocess --host 127.0.0.1 --port 39091 \
  --control-api-address 127.0.0.1:39093 --disable-runtime-dependency-installation > "$TMP/superlink.log" 2>&1 &
SL=$!
for i in $(seq 1 100); do
  python -c "import httpx,sys; sys.exit(0 if httpx.get('http://127.0.0.1:39091/health').is_success else 1)" 2>/dev/null && break
  sleep 0.3
done
flwr federation simulation-config @none/default local --num-supernodes 3 --init-args-num-cpus 2 || { kill $SL; exit 3; }
cd "$ROOT"
flwr run . local --stream --run-config "$RUNCFG"
rc=$?
kill $SL
wait $SL
exit $rc
"""


def test_flwr_run_matches_local_engine(tmp_path):
    assert shutil.which("unshare") and shutil.which("ip"), "unshare and ip (util-linux, iproute2) are needed"
    windows = generate(GeneratorSettings(nsos=["FI", "NL", "PL"], persons_scale=0.3)).windows
    data_dir = tmp_path / "data"
    prepare(windows, data_dir, 0, 0.2, 0.1)
    # one pass per round: the engines agree to float rounding, which hundreds of steps would amplify
    cfg = ExperimentConfig.model_validate({"federation": {"rounds": 2}, "training": {"min_round_steps": 0}})
    run_local(app_run_config(cfg, str(data_dir), str(tmp_path / "local"), quiet=True), str(data_dir))

    flwr_out = tmp_path / "flwr"
    run_cfg = (f"data-dir={json.dumps(str(data_dir))} output-dir={json.dumps(str(flwr_out))} "
               "federation.rounds=2 training.min_round_steps=0 quiet=true")
    env = {"BIN": str(BIN), "TMP": str(tmp_path), "ROOT": str(ROOT), "RUNCFG": run_cfg, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    script = "; ".join(f"export {k}={shlex.quote(v)}" for k, v in env.items()) + "\n" + SCRIPT
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c", script],
                          capture_output=True, text=True, timeout=600)
    log = (tmp_path / "superlink.log").read_text() if (tmp_path / "superlink.log").exists() else ""
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + log[-2000:]
    local = [json.loads(x) for x in (tmp_path / "local" / "metrics.jsonl").read_text().splitlines()]
    flwr = [json.loads(x) for x in (flwr_out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in flwr] == [0, 1, 2]
    for a, b in zip(local, flwr):
        keys = [k for k in a if k.startswith(("central.", "nso."))]
        assert len(keys) > 10
        assert max(abs(a[k] - b[k]) for k in keys) < 1e-4

"""The `deployment` engine: Flower's Deployment Engine on this machine, as NSOs would run it.

One SuperLink (the coordinator) and one SuperNode per NSO, all on 127.0.0.1: TLS with a run-local
CA, SuperNode authentication with one key pair per NSO registered at the SuperLink (an
unregistered SuperNode is refused), no runtime dependency installation (offline). Each SuperNode's
node config names its NSO and a data directory that holds only that NSO's file. The app is
submitted with `flwr run`; progress comes from the ServerApp's metrics.jsonl. Every process
started here is stopped by PID on success, error or Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import tomli_w

from clients.privacy.randomness import NODE_SECRET_KEY, simulated_node_secret
from datasets.errors import UserError
from server.records import progress_line

from ..results.metrics import read_new_lines
from .base import EngineRun
from .pki import make_node_keys, make_tls
from .processes import Processes, free_port, wait_port

BIN = Path(sys.executable).parent
APP_DIR = Path(__file__).resolve().parents[2]
CONNECTION = "nso-ppml"


def _link_own_files(data_dir: Path, node_data: Path, nso: str, inference_subdir: str) -> None:
    """The NSO's partition and, for time-use estimation, its sensor-only, labelled and diary
    samples; never another NSO's file, never the simulation's truth."""
    files = [f"nso-{nso}.npz"] + [f"{inference_subdir}/{kind}-{nso}.npz" for kind in ("sensor", "labelled", "diary")
                                  if inference_subdir]
    for name in files:
        target = node_data / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(data_dir / name, target)


class DeploymentEngine:
    """`extra_supernodes` (names given unregistered keys) and `after_round` ((round, callable(procs)),
    called once that round has finished) let a test act on a live federation."""

    def __init__(self, extra_supernodes: list[str] | None = None,
                 after_round: tuple[int, Callable[[Processes], None]] | None = None) -> None:
        self.extra_supernodes = list(extra_supernodes or [])
        self.after_round = after_round

    def run(self, job: EngineRun) -> None:
        if not (APP_DIR / "pyproject.toml").exists():
            raise UserError(f"the deployment engine submits the app from its source directory; {APP_DIR} has no "
                            "pyproject.toml (run from a checkout of nso-ppml)")
        dep = job.run_dir / "deployment"
        tls = make_tls(dep / "certs")
        home = dep / "flwr-home"
        home.mkdir(parents=True, exist_ok=True)
        link_port = free_port()
        (home / "config.toml").write_text(tomli_w.dumps({"superlink": {"default": CONNECTION, CONNECTION: {
            "address": f"127.0.0.1:{link_port}", "root-certificates": str(tls["ca"])}}}))
        env = {**os.environ, "FLWR_HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               "RAY_DISABLE_USAGE_STATS": "1", "FLWR_TELEMETRY_ENABLED": "0",
               # SuperExec looks for new tasks every second by default; Flower lets this be shorter
               "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": os.environ.get("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.1")}
        procs = Processes(dep / "logs", env)
        try:
            link = procs.start("superlink", [
                str(BIN / "flower-superlink"), "--ssl-ca-certfile", str(tls["ca"]), "--ssl-certfile",
                str(tls["cert"]), "--ssl-keyfile", str(tls["key"]), "--enable-supernode-auth",
                "--disable-runtime-dependency-installation", "--host", "127.0.0.1", "--port", str(link_port),
                "--isolation", "subprocess"])
            wait_port(link_port, link, dep / "logs" / "superlink.log")
            for name in job.nsos + self.extra_supernodes:
                self._start_supernode(procs, job, dep, name, tls["ca"], link_port, env)
            run_cfg = dep / "run_config.toml"
            run_cfg.write_text(tomli_w.dumps({k: v for k, v in job.run_config.items() if v is not None}))
            submit = procs.start("flwr-run", [str(BIN / "flwr"), "run", str(APP_DIR), CONNECTION, "--run-config",
                                              str(run_cfg), "--stream"], cwd=APP_DIR)
            self._follow(job, procs, submit, link, dep)
        finally:
            procs.stop_all()

    def _start_supernode(self, procs: Processes, job: EngineRun, dep: Path, name: str, ca: Path, link_port: int,
                         env: dict[str, str]) -> None:
        """A SuperNode for NSO `name`; only the federation's NSOs get their key registered and their data."""
        private, public = make_node_keys(dep / "keys", f"nso-{name}")
        node_data = dep / "data" / "none"
        if name in job.nsos:
            reg = subprocess.run([str(BIN / "flwr"), "supernode", "register", str(public), CONNECTION],
                                 env=env, capture_output=True, text=True, timeout=120)
            if reg.returncode != 0:
                raise UserError(f"registering the SuperNode key of NSO {name} failed: {reg.stdout}{reg.stderr}")
            node_data = dep / "data" / name  # this NSO's own files, nothing else
            _link_own_files(Path(job.data_dir), node_data, name, str(job.run_config.get("inference-subdir") or ""))
        persistent = job.cfg.engine.deployment_runtime == "persistent"
        runtime_port = free_port()
        launcher = [sys.executable, "-m", "simulation.engines.supernode"] if persistent else [str(BIN / "flower-supernode")]
        node = procs.start(f"supernode-{name}", [
            *launcher, "--root-certificates", str(ca), "--superlink", f"127.0.0.1:{link_port}",
            "--auth-supernode-private-key", str(private), "--node-config",
            f"nso='{name}' data-dir='{node_data}' {NODE_SECRET_KEY}='{simulated_node_secret(job.cfg.seed, name)}'",
            "--port", str(runtime_port), "--isolation", "process" if persistent else "subprocess"], cwd=APP_DIR)
        if persistent:  # the SuperNode's ClientApps run in one long-lived process beside it, ended with it
            wait_port(runtime_port, node, dep / "logs" / f"supernode-{name}.log", name=f"NSO {name}'s SuperNode")
            procs.start(f"clientapp-{name}", [
                sys.executable, "-m", "simulation.engines.clientapp_worker", "--runtime-api-address",
                f"127.0.0.1:{runtime_port}", "--parent-pid", str(node.pid)], cwd=APP_DIR)

    def _follow(self, job: EngineRun, procs: Processes, submit: subprocess.Popen, link: subprocess.Popen,
                dep: Path) -> None:
        """Print round lines as metrics.jsonl grows until `flwr run` ends; fail if anything stops early."""
        metrics, seen = job.run_dir / "metrics.jsonl", 0
        rounds = int(job.run_config.get("federation.rounds", 0))
        after = self.after_round
        while True:
            done = submit.poll() is not None
            if not done:  # a test's after-round action should land before the next round gets far
                time.sleep(0.05 if after else 0.5)
            records, seen = read_new_lines(metrics, seen)
            finished = [r["round"] for r in records if "round" in r and "event" not in r]
            if not job.quiet:
                for r in records:
                    if "round" in r and "event" not in r:
                        print(progress_line(r, rounds, job.cfg.randomness_mode), file=sys.stderr, flush=True)
            if after and finished and finished[-1] >= after[0]:
                after[1](procs)
                after = None
            if done:
                break
            if link.poll() is not None:
                raise UserError(f"the SuperLink stopped (code {link.returncode}); see {dep / 'logs'}")
            for nso in job.nsos:  # a worker ends only with its SuperNode
                worker, node = procs.procs.get(f"clientapp-{nso}"), procs.procs[f"supernode-{nso}"]
                if worker is not None and worker.poll() is not None and node.poll() is None:
                    raise UserError(f"NSO {nso}'s ClientApp worker stopped (code {worker.returncode}) while its "
                                    f"SuperNode runs; see {dep / 'logs' / f'clientapp-{nso}.log'}")
        if submit.returncode != 0:
            raise UserError(f"`flwr run` failed with code {submit.returncode}; see {dep / 'logs' / 'flwr-run.log'}")

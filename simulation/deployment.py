"""The `deployment` engine: Flower's Deployment Engine on this machine, as NSOs would run it.

One SuperLink (the coordinator) and one SuperNode per NSO, all on 127.0.0.1: TLS with a run-local
CA, SuperNode authentication with one key pair per NSO registered at the SuperLink (an
unregistered SuperNode is refused), no runtime dependency installation (offline). Each SuperNode's
node config names its NSO and a data directory that holds only that NSO's file. The app is
submitted with `flwr run`; progress comes from the ServerApp's metrics.jsonl. Every process
started here is stopped by its process group on success, error or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w

from datasets.errors import UserError
from server.records import progress_line

from .pki import make_node_keys, make_tls

BIN = Path(sys.executable).parent
APP_DIR = Path(__file__).resolve().parents[1]
CONNECTION = "nso-ppml"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"the SuperLink exited with code {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise UserError(f"the SuperLink did not listen on 127.0.0.1:{port} within {timeout:g} s; see {log}")


def descendants(pid: int) -> set[int]:
    """All processes below `pid` (from /proc), whatever session or process group they chose."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Processes:
    """Processes started for a run, each in its own process group, stopped by PID on exit."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir, self.env = log_dir, env
        self.procs: dict[str, subprocess.Popen] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, cmd: list[str], cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=cwd,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one started process and its descendants (e.g. an NSO's SuperNode, mid-run)."""
        proc = self.procs[name]
        _signal({proc.pid} | descendants(proc.pid), sig)
        proc.wait()

    def stop_all(self) -> None:
        """SIGTERM every started process and everything it started (Flower starts SuperExec,
        ServerApp and ClientApp processes in sessions of their own), then SIGKILL what is left."""
        pids = set()
        for proc in self.procs.values():
            pids |= {proc.pid} | descendants(proc.pid)
        _signal(pids, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        _signal({p for p in pids if _alive(p)}, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait()


def _progress(metrics: Path, seen: int, rounds: int, quiet: bool) -> tuple[int, int | None]:
    """Print new round lines of metrics.jsonl; return (lines read, last finished round)."""
    last = None
    if not metrics.exists():
        return seen, last
    for line in metrics.read_text().splitlines()[seen:]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a line being written; read it next time
        if "round" in row:
            last = row["round"]
            if not quiet:
                print(progress_line(row, rounds), file=sys.stderr, flush=True)
        seen += 1
    return seen, last


def run_deployment(rc: dict[str, Any], data_dir: str, run_dir: Path, nsos: list[str], quiet: bool,
                   hooks: dict | None = None) -> None:
    """Start SuperLink and SuperNodes, run the app, stop everything. `hooks` lets tests act mid-run:
    {"extra_supernodes": [names with unregistered keys], "after_round": (round, callable(procs))}."""
    if not (APP_DIR / "pyproject.toml").exists():
        raise UserError(f"the deployment engine submits the app from its source directory; {APP_DIR} has no "
                        "pyproject.toml (run from a checkout of nso-ppml)")
    hooks = hooks or {}
    dep = run_dir / "deployment"
    tls = make_tls(dep / "certs")
    home = dep / "flwr-home"
    home.mkdir(parents=True, exist_ok=True)
    link_port = free_port()
    (home / "config.toml").write_text(tomli_w.dumps({"superlink": {
        "default": CONNECTION, CONNECTION: {"address": f"127.0.0.1:{link_port}", "root-certificates": str(tls["ca"])}}}))
    env = {**os.environ, "FLWR_HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_DISABLE_USAGE_STATS": "1"}
    procs = Processes(dep / "logs", env)
    try:
        link = procs.start("superlink", [
            str(BIN / "flower-superlink"), "--ssl-ca-certfile", str(tls["ca"]), "--ssl-certfile", str(tls["cert"]),
            "--ssl-keyfile", str(tls["key"]), "--enable-supernode-auth", "--disable-runtime-dependency-installation",
            "--host", "127.0.0.1", "--port", str(link_port), "--isolation", "subprocess"])
        _wait_port(link_port, link, dep / "logs" / "superlink.log")
        for name in nsos + list(hooks.get("extra_supernodes", [])):
            private, public = make_node_keys(dep / "keys", f"nso-{name}")
            if name in nsos:  # only the federation's NSOs are registered
                reg = subprocess.run([str(BIN / "flwr"), "supernode", "register", str(public), CONNECTION],
                                     env=env, capture_output=True, text=True, timeout=120)
                if reg.returncode != 0:
                    raise UserError(f"registering the SuperNode key of NSO {name} failed: {reg.stdout}{reg.stderr}")
                node_data = dep / "data" / name  # this NSO's own file, nothing else
                node_data.mkdir(parents=True, exist_ok=True)
                target = node_data / f"nso-{name}.npz"
                if not target.exists():
                    os.link(Path(data_dir) / f"nso-{name}.npz", target)
            else:
                node_data = dep / "data" / "none"
            node_config = f"nso='{name}' data-dir='{node_data}'"
            procs.start(f"supernode-{name}", [
                str(BIN / "flower-supernode"), "--root-certificates", str(tls["ca"]),
                "--superlink", f"127.0.0.1:{link_port}", "--auth-supernode-private-key", str(private),
                "--node-config", node_config, "--port", str(free_port()), "--isolation", "subprocess"])
        run_cfg = dep / "run_config.toml"
        run_cfg.write_text(tomli_w.dumps({k: v for k, v in rc.items() if v is not None}))
        submit = procs.start("flwr-run", [str(BIN / "flwr"), "run", str(APP_DIR), CONNECTION, "--run-config",
                                          str(run_cfg), "--stream"], cwd=APP_DIR)
        metrics, seen = run_dir / "metrics.jsonl", 0
        rounds = int(rc.get("federation.rounds", 0))
        after = hooks.get("after_round")
        while submit.poll() is None:
            time.sleep(0.5)
            seen, last = _progress(metrics, seen, rounds, quiet)
            if after and last is not None and last >= after[0]:
                after[1](procs)
                after = None
            if link.poll() is not None:
                raise UserError(f"the SuperLink stopped (code {link.returncode}); see {dep / 'logs'}")
        _progress(metrics, seen, rounds, quiet)
        if submit.returncode != 0:
            raise UserError(f"`flwr run` failed with code {submit.returncode}; see {dep / 'logs' / 'flwr-run.log'}")
    finally:
        procs.stop_all()

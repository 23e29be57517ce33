"""Processes an engine or protocol starts on this machine: free loopback ports, waiting for a port,
and stopping every started process and its descendants by PID (Flower starts SuperExec, ServerApp
and ClientApp processes in sessions of their own, so process groups alone do not reach them)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from datasets.errors import UserError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0, name: str = "the SuperLink") -> None:
    """Return once something listens on 127.0.0.1:port; fail if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"{name} exited with code {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise UserError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:g} s; see {log}")


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
    try:  # an orphan reparented here is our child: reap it once it has exited, or it stays a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _become_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER): Linux only; elsewhere orphans go to init as before."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


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
        # Orphans (a SuperExec whose SuperNode was killed, or which a dying parent left behind)
        # are reparented to this process instead of init, so stop_all can still find them by PID.
        _become_subreaper()
        self.unrelated = descendants(os.getpid())  # children this process had before: not ours to stop

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
        pids = descendants(os.getpid()) - self.unrelated  # started ones, theirs, and orphans reparented here
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



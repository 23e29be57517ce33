"""Provenance of every output: package versions, git commit, machine. Needed to reproduce a figure."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("nso-ppml", "flwr", "torch", "opacus", "numpy", "pandas", "pyarrow", "pydantic", "ray")


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> dict[str, str | bool | None]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty if commit else None}


def machine() -> dict[str, str | int | None]:
    import os

    return {"python": sys.version.split()[0], "platform": platform.platform(), "processor": platform.machine(),
            "cpus": os.cpu_count()}


def manifest(**extra) -> dict:
    return {"versions": package_versions(), "git": git_commit(), "machine": machine(), **extra}

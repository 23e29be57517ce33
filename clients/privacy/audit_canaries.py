"""Update-direction canaries of the privacy audit, federation scope (docs/privacy.md, "Audit").

For an audit of DP-FedAvg from the server's seat, each NSO holds `count` extra "persons" whose
clipped update is a fixed random unit direction times the clipping norm - the worst case the
sensitivity allows - included with probability 1/2 each and then Poisson-sampled every round like
any person. The auditor regenerates the same directions from the audit seed and looks for them in
the aggregates SecAgg+ reveals (simulation/audit/run_audit.py). Without an audit, count is 0 and
nothing here runs.
"""

from __future__ import annotations

import zlib

import numpy as np


def direction_canaries(seed: int, nso: str, count: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit directions [count, dims], included [count]) of one NSO's canaries."""
    rng = np.random.default_rng([seed, zlib.crc32(nso.encode()), 0xD1])
    u = rng.normal(size=(count, dims))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return u, rng.random(count) < 0.5


def add_canaries(sums: list[np.ndarray], seed: int, nso: str, count: int, rate: float, clip: float,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """`sums` plus clip x direction for every included canary Poisson-sampled this round."""
    dims = sum(s.size for s in sums)
    u, included = direction_canaries(seed, nso, count, dims)
    sampled = included & (rng.random(count) < rate)
    if not sampled.any():
        return sums
    flat = np.concatenate([s.ravel() for s in sums]) + clip * u[sampled].sum(axis=0)
    out, start = [], 0
    for s in sums:
        out.append(flat[start:start + s.size].reshape(s.shape).astype(s.dtype))
        start += s.size
    return out

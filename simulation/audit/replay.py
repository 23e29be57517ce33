"""The server's seat, replaying the noise: can a party that knows everything the server knows
(the config and seed, the code, every aggregate SecAgg+ revealed) predict the NSOs' noise shares?

In the federation scope each NSO's stream draws, in this order, its Poisson person sample, then per
parameter array the rounding offsets and the noise share (clients/nso_client.py, noise_share.py).
For each way the attacker can derive a stream from what it holds (a candidate), it redraws every
NSO's share, sums them to N_r and scores it against the revealed aggregate A_r:
z_r = sqrt(d) cos(A_r, N_r), which is standard normal when N_r is independent of the real noise and
about sqrt(d) ||noise|| / ||A_r|| when the replay is right; Z = sum_r z_r / sqrt(R). The attacker
wins when Z > 5 (one-sided p < 3e-7): it then holds the exact clipped sums and which persons each
NSO sampled, and the reported epsilon means nothing against it. In `secure` mode it must lose.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from clients.model import get_weights, model_for_index
from clients.nso_client import round_seed
from clients.privacy.randomness import node_randomness

WIN_Z = 5.0
Stream = Callable[[str, int], np.random.Generator]  # (NSO, round) -> the stream the attacker replays


def candidates(seed: int) -> dict[str, Stream]:
    """Every derivation of an NSO's federation stream that the server's seat can compute."""
    def node_secret(nso: str, r: int) -> np.random.Generator:
        return node_randomness("reproducible", {}, seed, nso).generator("federation", r)  # as `flwr run .` derives it

    def legacy(nso: str, r: int) -> np.random.Generator:  # before issue 19: one public seed per NSO and round
        return np.random.default_rng(round_seed(seed, nso, r))

    return {"node secret from the run seed (randomness = 'reproducible')": node_secret,
            "round seed from the run seed (the code before issue 19)": legacy}


def replayed_noise(stream: Stream, nsos: list[str], persons: dict[str, int], shapes: list[tuple[int, ...]],
                   plan: dict, r: int) -> np.ndarray:
    """The sum over NSOs of the noise shares that `stream` predicts for round r (flat)."""
    total = np.zeros(sum(math.prod(s) for s in shapes))
    for nso in nsos:
        rng = stream(nso, r)
        rng.random(persons[nso])  # the person sample
        parts = []
        for shape in shapes:
            rng.random(shape)  # the rounding offsets
            parts.append(np.round(rng.normal(0.0, plan["noise_std"], shape) / plan["grid_step"]) * plan["grid_step"])
        total += np.concatenate([p.ravel() for p in parts])
    return total


def replay_score(view: np.ndarray, noise: list[np.ndarray]) -> dict:
    """Z over rounds and the share of the aggregates' energy the replayed noise removes."""
    d = view.shape[1]
    z = [math.sqrt(d) * float(a @ n) / (np.linalg.norm(a) * np.linalg.norm(n) + 1e-300) for a, n in zip(view, noise)]
    removed = 1.0 - sum(float(np.sum((a - n) ** 2)) for a, n in zip(view, noise)) / float(np.sum(view ** 2))
    total = sum(z) / math.sqrt(len(z))
    return {"z": total, "energy_removed": removed, "won": bool(total > WIN_Z)}


def replay_audit(cfg, run_dir, index: dict, plan: dict) -> dict | None:
    """The summary's `audit.replay` block (federation scope with the server's view kept), else None."""
    path = run_dir / "server_view.npy"
    if not path.exists() or not plan:
        return None
    view = np.load(path)
    shapes = [w.shape for w in get_weights(model_for_index(cfg.model, cfg.seed, index))]
    nsos = index["nsos"]
    persons = {n: int(index["windows"][n]["train_persons"]) for n in nsos}
    results = {name: replay_score(view, [replayed_noise(stream, nsos, persons, shapes, plan, r + 1)
                                         for r in range(len(view))])
               for name, stream in candidates(cfg.seed).items()}
    return {"rounds": int(len(view)), "win_z": WIN_Z, "candidates": results,
            "won": any(c["won"] for c in results.values())}

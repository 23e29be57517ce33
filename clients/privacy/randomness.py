"""Where a node's DP randomness comes from: the noise, the Poisson samples, the rounding offsets.

A DP guarantee holds only against a party that cannot predict the noise. Two modes
(docs/privacy.md, "Randomness"):
- secure: every stream is seeded with 128 bits of OS entropy (numpy's SeedSequence() reads
  os.urandom) drawn inside the node that adds the noise, at the moment it is used. No other party,
  the server included, can derive it, and no two runs agree. The generators themselves (PCG64,
  torch's Mersenne Twister) are not cryptographically secure: an observer of their raw outputs
  could predict later ones, but only noisy sums ever leave the node.
- reproducible: every stream derives from a node secret the simulation sets up (node config key
  `node-secret`; without one, from the run seed and the NSO code, as under `flwr run .`), so the
  same config and seed give the same numbers. Whoever holds the config can replay the noise: this
  is for simulation studies and is no guarantee against that party.
Either way, the server-side code never computes or reads an NSO's streams: they are made here.
"""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass

import numpy as np

from datasets.errors import UserError

MODES = ("reproducible", "secure")
KEY = "randomness"  # run config key
NODE_SECRET_KEY = "node-secret"  # node config key (reproducible mode)
REPRODUCIBLE_NOTE = ("noise reproducible from the config and seed: no guarantee against whoever holds them "
                     "(randomness = 'secure' for releases)")


def check_mode(mode: str, where: str = "randomness") -> str:
    if mode not in MODES:
        raise UserError(f"{where} = {mode!r}: allowed are {', '.join(repr(m) for m in MODES)}")
    return mode


def simulated_node_secret(seed: int, nso: str) -> str:
    """The node secret a simulation gives NSO `nso` in reproducible mode (hex, 128 bits)."""
    words = np.random.SeedSequence([seed, zlib.crc32(nso.encode()), 0x5EC2E7]).generate_state(4)
    return "".join(f"{int(w):08x}" for w in words)


def _words(secret: str) -> list[int]:
    try:
        value = int(secret, 16)
    except ValueError:
        raise UserError(f"node config {NODE_SECRET_KEY} = {secret!r} is not a hexadecimal number") from None
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(max(1, (len(secret) * 4 + 31) // 32))]


@dataclass(frozen=True)
class Randomness:
    """One node's source of DP randomness; `purpose` and `ids` name the stream (e.g. "sample", round)."""

    mode: str
    secret: tuple[int, ...] = ()

    def generator(self, purpose: str, *ids: int) -> np.random.Generator:
        if self.mode == "secure":
            return np.random.default_rng(np.random.SeedSequence())  # fresh OS entropy, never stored
        return np.random.default_rng(np.random.SeedSequence([*self.secret, zlib.crc32(purpose.encode()),
                                                            *(int(i) for i in ids)]))

    def seed(self, purpose: str, *ids: int) -> int:
        """A 63-bit seed for generators that take one (torch)."""
        if self.mode == "secure":
            return secrets.randbits(63)
        return int(self.generator(purpose, *ids).integers(2**63))

    @property
    def reproducible(self) -> bool:
        return self.mode == "reproducible"


def node_randomness(mode: str, node_config: dict, seed: int, nso: str) -> Randomness:
    """The node's Randomness: OS entropy, or its node secret (reproducible)."""
    check_mode(mode)
    if mode == "secure":
        return Randomness("secure")
    secret = str(node_config.get(NODE_SECRET_KEY) or "") or simulated_node_secret(seed, nso)
    return Randomness("reproducible", tuple(_words(secret)))

"""The second PSI protocol: Diffie-Hellman PSI cardinality on Curve25519 (X25519 of libsodium,
through PyNaCl), with grouped responses, so that the NSO can count the persons matched by any of
several keys.

- Hash to the curve: SHA-512 of the tagged key, its first 32 bytes (top bit cleared) mapped by
  Elligator 2 (RFC 9380 section 6.7.1, Z = 2) straight to a Montgomery u-coordinate. This is
  libsodium's `crypto_core_ed25519_from_uniform` map without its last two steps, clearing the
  cofactor and encoding in Edwards form, which cost 8 times the map itself and which X25519 makes
  redundant: its clamped scalars are multiples of 8, so every exponentiation lands in the
  prime-order subgroup. The map is the only curve arithmetic written here (field operations in
  GMP through gmpy2), and tests check it against libsodium's on random inputs (equal after
  clearing the cofactor). Secret exponents: X25519 scalars; exponents commute on the subgroup, and
  the NSO picks its scalar so that the inverse mod l is itself a clamped scalar (`_scalar_pair`):
  it can undo its exponent on the subgroup component, which is all that the third party's H(y)^b
  holds.
- SETUP (third party -> NSO): 16-byte fingerprints of H(y)^b of its distinct tagged keys, padded
  with fingerprints of random subgroup points (g^r, distributed as H(y)^b is), sorted.
- REQUEST (NSO -> third party): H(x)^a of each person's K keys, K per person, persons in a random
  order.
- RESPONSE (third party -> NSO): each raised to b; the groups shuffled, and the K elements within
  each group.
- The NSO removes a (H(x)^b) and counts, per group, the fingerprints found in the setup: the union
  of the match keys is the number of groups with at least one. It learns that count and how many
  groups had 0..K keys agree, never which person matched or by which key; the third party learns the
  NSO's number of persons and K. The 16-byte fingerprints make a false match about 2^-128 per pair.
Both parties spread the exponentiations over `workers` processes (`protocol.workers`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import secrets

import gmpy2
import numpy as np
from nacl import bindings as sodium

POINT = 32
FINGERPRINT = 16
CHUNK = 20_000
FIELD = 2 ** 255 - 19
ORDER = 2 ** 252 + 27742317777372353535851937790883648493  # l, the prime-order subgroup's order
MASK_255 = (1 << 255) - 1
FIELD_MPZ = gmpy2.mpz(FIELD)
MONT_A = gmpy2.mpz(486662)  # Curve25519: v^2 = u^3 + A u^2 + u


def _elligator2_u(r: int) -> bytes:
    """Elligator 2 on Curve25519 (RFC 9380, map_to_curve_elligator2 with J = 486662, Z = 2): the
    u-coordinate of a curve point; is_square is GMP's Jacobi symbol."""
    tv1 = 2 * r * r % FIELD_MPZ
    if tv1 == FIELD_MPZ - 1:  # 1 + Z u^2 = 0: inv0 gives 0 (RFC 9380 section 4)
        tv1 = gmpy2.mpz(0)
    x1 = -MONT_A * gmpy2.invert(tv1 + 1, FIELD_MPZ) % FIELD_MPZ
    gx1 = ((x1 + MONT_A) * x1 + 1) * x1 % FIELD_MPZ
    u = x1 if gmpy2.jacobi(gx1, FIELD_MPZ) >= 0 else (-x1 - MONT_A) % FIELD_MPZ
    return int(u).to_bytes(POINT, "little")


def _hash_chunk(keys: list[str]) -> bytes:
    digest, mpz = hashlib.sha512, gmpy2.mpz
    return b"".join(_elligator2_u(mpz(int.from_bytes(digest(k.encode()).digest()[:32], "little") & MASK_255))
                    for k in keys)


def _clamped(scalar: bytes) -> int:
    k = int.from_bytes(scalar, "little")
    return (k & ~7 & ~(1 << 255)) | (1 << 254)


def _scalar_pair() -> tuple[bytes, bytes]:
    """A random X25519 scalar and one whose clamped value is its inverse mod l (about half of all
    scalars have one: 2^254 + 8m must hit the inverse with m < 2^251)."""
    while True:
        a = secrets.token_bytes(32)
        m = (pow(_clamped(a), -1, ORDER) - (1 << 254)) * pow(8, -1, ORDER) % ORDER
        if m < 1 << 251:
            return a, ((1 << 254) + 8 * m).to_bytes(POINT, "little")


def _raise_chunk(args: tuple[bytes, bytes]) -> bytes:
    scalar, blob = args
    mult = sodium.crypto_scalarmult
    return b"".join(mult(scalar, blob[i:i + POINT]) for i in range(0, len(blob), POINT))


def _random_chunk(n: int) -> bytes:
    return b"".join(sodium.crypto_scalarmult_base(os.urandom(32)) for _ in range(n))


class _Parallel:
    """The exponentiations of one party, in `workers` processes (forked: nothing is re-imported)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.scalar, self.inverse = _scalar_pair()

    def _map(self, fn, items: list) -> bytes:
        if self.workers == 1 or len(items) <= 1:
            return b"".join(map(fn, items))
        with multiprocessing.get_context("fork").Pool(self.workers) as pool:
            return b"".join(pool.map(fn, items))

    def hashed_raised(self, keys: list[str]) -> bytes:
        chunks = [keys[i:i + CHUNK] for i in range(0, len(keys), CHUNK)]
        return self.raised(self._map(_hash_chunk, chunks))

    def raised(self, blob: bytes, inverse: bool = False) -> bytes:
        step, scalar = CHUNK * POINT, self.inverse if inverse else self.scalar
        return self._map(_raise_chunk, [(scalar, blob[i:i + step]) for i in range(0, len(blob), step)])

    def random_points(self, n: int) -> bytes:
        return self._map(_random_chunk, [min(CHUNK, n - i) for i in range(0, n, CHUNK)])


def _points(blob: bytes, what: str, size: int = POINT) -> list[bytes]:
    if len(blob) % size:
        raise ValueError(f"the {what} is not a sequence of {size}-byte values ({len(blob)} bytes)")
    return [blob[i:i + size] for i in range(0, len(blob), size)]


class ThirdPartyX25519:
    def __init__(self, workers: int, group: int) -> None:
        self._p, self.group = _Parallel(workers), group

    def setup(self, keys: list[str], pad_to: int | None) -> bytes:
        real = _points(self._p.hashed_raised(keys), "set")
        dummies = _points(self._p.random_points(pad_to - len(keys)), "set") if pad_to else []
        return b"".join(sorted(p[:FINGERPRINT] for p in real + dummies))

    def respond(self, request: bytes) -> bytes:
        points = _points(self._p.raised(request), "request")
        if len(points) % self.group:
            raise ValueError(f"the request holds {len(points)} points, not a multiple of the {self.group} keys per "
                             "person agreed")
        groups = [points[i:i + self.group] for i in range(0, len(points), self.group)]
        rng = secrets.SystemRandom()
        rng.shuffle(groups)
        for g in groups:
            rng.shuffle(g)
        return b"".join(p for g in groups for p in g)


class NSOX25519:
    def __init__(self, workers: int) -> None:
        self._p = _Parallel(workers)

    def request(self, groups: np.ndarray) -> bytes:
        """groups: persons x K tagged keys; the persons are sent in a random order."""
        order = np.random.default_rng(np.random.SeedSequence()).permutation(len(groups))
        self.group = groups.shape[1]
        return self._p.hashed_raised(groups[order].ravel().tolist())

    def count(self, setup: bytes, response: bytes) -> dict:
        theirs = set(_points(setup, "setup", FINGERPRINT))
        found = np.array([p[:FINGERPRINT] in theirs for p in _points(self._p.raised(response, inverse=True),
                                                                       "response")])
        if len(found) % self.group:
            raise ValueError(f"the response holds {len(found)} points, not {self.group} per person")
        per_person = found.reshape(-1, self.group).sum(axis=1)
        return {"matched": int((per_person > 0).sum()),
                "persons_by_keys_agreeing": np.bincount(per_person, minlength=self.group + 1).tolist()}


def version() -> str:
    import nacl

    return f"X25519 of libsodium (PyNaCl {nacl.__version__}), Elligator 2 in GMP (gmpy2 {gmpy2.version()})"

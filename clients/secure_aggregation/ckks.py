"""CKKS vectors for homomorphic-encryption aggregation, with TenSEAL (Microsoft SEAL, OpenMined).

One CKKS key pair per run, shared by the NSOs: one NSO (the key holder) makes it and seals the
secret context to every other NSO's X25519 key (libsodium sealed boxes, PyNaCl). The server holds
only the public context: it adds the NSOs' ciphertexts and cannot decrypt them; an NSO decrypts
the sum. One key shared by the NSOs, not threshold CKKS:
OpenFHE's multiparty CKKS would let no single NSO decrypt alone, but the `openfhe` wheels on the
registry carry modules for CPython 3.8, 3.10 or 3.12 only and this project runs on 3.11
(docs/secure_aggregation.md states what the single key costs in trust).

Error: CKKS is approximate. A fresh encryption adds at most B_clean / scale to every slot
(Cheon, Kim, Kim and Song 2017, Lemma 1, with the Gaussian error sigma = 3.2 and a ternary secret
of Hamming weight <= N); additions add the errors, so a sum of m ciphertexts is off by at most
m B_clean / scale per slot, plus the encoding's rounding (N / scale per slot).
"""

from __future__ import annotations

import math

import numpy as np
import tenseal as ts
from nacl.public import PrivateKey, PublicKey, SealedBox

POLY_DEGREE = 8192  # 4096 slots; the smallest ring SEAL allows at 128-bit security for these moduli
SLOTS = POLY_DEGREE // 2
OUTER_BITS = 60  # the first and last primes of the modulus chain
SIGMA = 3.2  # SEAL's error standard deviation


class CkksError(ValueError):
    """A ciphertext or context that is not what the protocol expects."""


def new_context(scale_bits: int) -> ts.Context:
    """A fresh private context: the run's key pair (no relinearisation or Galois keys: sums only)."""
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=POLY_DEGREE,
                     coeff_mod_bit_sizes=[OUTER_BITS, scale_bits, OUTER_BITS])
    ctx.global_scale = 2.0 ** scale_bits
    return ctx


def serialize(ctx: ts.Context, secret: bool) -> bytes:
    """The context as bytes, with its secret key only when `secret`."""
    return ctx.serialize(save_public_key=True, save_secret_key=secret, save_galois_keys=False,
                         save_relin_keys=False)


def load_context(data: bytes, secret: bool) -> ts.Context:
    """A context from bytes, refused unless it holds a secret key exactly when `secret`."""
    try:
        ctx = ts.context_from(data)
    except Exception as exc:  # noqa: BLE001 - TenSEAL raises bare exceptions for bad bytes
        raise CkksError(f"not a TenSEAL context ({type(exc).__name__})") from None
    if ctx.is_private() != secret:
        raise CkksError("the context holds a secret key" if ctx.is_private() else "the context holds no secret key")
    return ctx


def max_value(scale_bits: int) -> float:
    """Largest |value| a slot of a sum may hold: the first prime carries 2^(60 - scale) before
    decryption wraps around; half of that for the sign, half again as margin."""
    return 2.0 ** (OUTER_BITS - scale_bits - 2)


def encrypt(ctx: ts.Context, values: np.ndarray) -> list[bytes]:
    """`values` (1-d) as ciphertexts of SLOTS values each (the last one shorter)."""
    return [ts.ckks_vector(ctx, values[i:i + SLOTS].tolist()).serialize()
            for i in range(0, len(values), SLOTS)]


def add(ctx: ts.Context, parts: list[list[bytes]]) -> list[bytes]:
    """The slot-wise sum of several NSOs' ciphertext lists (same lengths), with the public context."""
    lengths = {len(p) for p in parts}
    if len(lengths) != 1:
        raise CkksError(f"the NSOs sent different numbers of ciphertexts: {sorted(lengths)}")
    out = []
    for chunks in zip(*parts):
        total = _vector(ctx, chunks[0])
        for c in chunks[1:]:
            total += _vector(ctx, c)
        out.append(total.serialize())
    return out


def decrypt(ctx: ts.Context, chunks: list[bytes], size: int) -> np.ndarray:
    """The plaintext of a ciphertext list, `size` values (refused if the lengths disagree)."""
    values = np.concatenate([np.asarray(_vector(ctx, c).decrypt(), dtype=np.float64) for c in chunks]) \
        if chunks else np.zeros(0)
    if values.size != size:
        raise CkksError(f"the ciphertexts hold {values.size} values, expected {size}")
    return values


def _vector(ctx: ts.Context, data: bytes) -> ts.CKKSVector:
    try:
        return ts.ckks_vector_from(ctx, data)
    except Exception as exc:  # noqa: BLE001
        raise CkksError(f"not a CKKS ciphertext of this run's context ({type(exc).__name__})") from None


def error_bound(ciphertexts_summed: int, scale_bits: int) -> float:
    """Largest error per slot of a sum of `ciphertexts_summed` fresh encryptions (module docstring)."""
    n = POLY_DEGREE
    b_clean = 8 * math.sqrt(2) * SIGMA * n + 6 * SIGMA * math.sqrt(n) + 16 * SIGMA * math.sqrt(n * n)
    return (ciphertexts_summed * b_clean + n) / 2.0 ** scale_bits


def new_box_key() -> PrivateKey:
    """An NSO's X25519 key for receiving the sealed secret context."""
    return PrivateKey.generate()


def seal(secret_context: bytes, public_key: bytes) -> bytes:
    """The secret context, readable only with the private half of `public_key`."""
    return SealedBox(PublicKey(public_key)).encrypt(secret_context)


def unseal(sealed: bytes, private_key: bytes) -> bytes:
    """Open a sealed secret context (refused if it was not sealed to this key)."""
    try:
        return SealedBox(PrivateKey(private_key)).decrypt(sealed)
    except Exception as exc:  # noqa: BLE001 - nacl raises CryptoError
        raise CkksError(f"the sealed key was not sealed to this NSO ({type(exc).__name__})") from None

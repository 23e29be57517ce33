"""The NSO's process (`ppml coverage measure`): holds the register (or a survey sample of it) and
the clerical sample, learns the intersection's size, releases the estimate to the third party.

Everything it reads is checked before it connects (malformed or repeated keys, an empty list, a
bad clerical file); then it runs its side of the PSI, estimates the coverage with its interval
(coverage_psi/estimate.py) and sends the released estimate - the only result the third party gets.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datasets.atomic import write_json
from datasets.errors import UserError

from .config import NORMALISATION, PROTOCOL, DesignSettings, ProtocolSettings
from .estimate import estimate, match_rate
from .keys import read_list, register_groups, register_keys
from .psi import NSOPSI
from .psi_x25519 import NSOX25519
from .wire import Channel, PeerError, client_context


@dataclass
class MeasureArgs:
    register: Path
    connect: str
    out: Path
    protocol: ProtocolSettings
    design: DesignSettings
    clerical: Path | None = None
    epsilon: float | None = 1.0
    seed: int = 0
    ca: Path | None = None
    timeout_s: float = 600.0
    transcript: Path | None = None
    randomness: str = "secure"  # the release noise: OS entropy here, or from the seed (simulation studies)


def clerical_rate(path: Path | None) -> tuple[float | None, float | None, int]:
    """(lambda_hat, its SE, persons in the list) from the clerical sample file, if any."""
    if path is None:
        return None, None, 0
    df = read_list(path)
    if not {"in_source", "key_matches"} <= set(df.columns):
        raise UserError(f"{path}: a clerical sample needs the columns in_source and key_matches (true/false)")
    flags = df[["in_source", "key_matches"]].apply(lambda s: s.str.lower().map({"true": True, "false": False}))
    if flags.isna().any().any():
        raise UserError(f"{path}: in_source and key_matches must be true or false")
    if (flags.key_matches & ~flags.in_source).any():
        raise UserError(f"{path}: a key cannot match for a person who is not in the list")
    n_in = int(flags.in_source.sum())
    lam, se = match_rate(n_in, int(flags.key_matches.sum()))
    return lam, se, n_in


def _persons(records: pd.DataFrame, design: DesignSettings, seed: int) -> pd.DataFrame:
    if design.kind == "register":
        return records
    if design.sample_size > len(records):
        raise UserError(f"design sample_size {design.sample_size} exceeds the register's {len(records)} persons")
    rng = np.random.default_rng([seed, 0x5A])
    return records.iloc[np.sort(rng.choice(len(records), design.sample_size, replace=False))]


def _connect(address: str, timeout: float, ca: Path | None) -> socket.socket:
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise UserError(f"--connect {address!r}: give 127.0.0.1:PORT (the protocol runs on this machine only)")
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise PeerError(f"no third party listens on {address} ({exc})") from None
            time.sleep(0.1)
    if ca is None:
        return sock
    try:
        return client_context(ca).wrap_socket(sock, server_hostname="127.0.0.1")
    except OSError as exc:
        raise PeerError(f"the TLS handshake with the third party failed ({exc})") from None


def _noise(randomness: str, seed: int) -> np.random.Generator:
    """The release noise's stream: OS entropy held only by the NSO (secure), or the seed's (reproducible,
    no guarantee against whoever knows the seed)."""
    return np.random.default_rng(np.random.SeedSequence() if randomness == "secure" else [seed, 0xD9])


def _match(ch: Channel, keys, protocol: ProtocolSettings) -> dict:
    """The NSO's side of the PSI after the HELLOs: {"matched": persons found, ...}. With x25519 the
    request is computed while the third party computes its setup (both parties at once; the frames
    keep their order: the setup is read before the request is sent)."""
    if protocol.method == "x25519":
        side = NSOX25519(protocol.workers)
        request = side.request(keys)
        setup = ch.receive("SETUP")
        ch.send("REQUEST", request)
        try:
            return side.count(setup, ch.receive("RESPONSE"))
        except ValueError as exc:
            raise PeerError(f"the third party's answer is malformed: {exc}") from None
    setup = ch.receive("SETUP")
    side = NSOPSI()
    ch.send("REQUEST", side.request(keys))
    return {"matched": side.intersection_size(setup, ch.receive("RESPONSE"))}


def measure(a: MeasureArgs) -> dict:
    persons = _persons(read_list(a.register), a.design, a.seed)
    if a.protocol.method == "x25519":  # persons x match keys, each tagged with its kind
        keys = register_groups(persons, str(a.register), tuple(a.protocol.match_keys))
    else:
        keys = register_keys(persons, str(a.register))
    lam, lam_se, clerical_in = clerical_rate(a.clerical)
    ch = Channel(_connect(a.connect, a.timeout_s, a.ca), a.timeout_s, a.transcript)
    start = time.perf_counter()
    try:
        ch.send("HELLO", {"protocol": PROTOCOL, "normalisation": NORMALISATION, "client_size": len(keys),
                          **a.protocol.model_dump()})
        ch.receive("HELLO")
        counted = _match(ch, keys, a.protocol)
        matched = counted["matched"]
        est = estimate(matched, len(keys), a.design.kind, a.design.design_effect, lam, lam_se, a.epsilon,
                       _noise(a.randomness, a.seed))
        ch.send("RESULT", est.as_dict())
        ch.receive("ACK")
    finally:
        ch.close()
    out = {"estimate": est.as_dict(), "randomness": a.randomness, **counted, "persons": len(keys),
           "clerical_in_source": clerical_in,
           "bytes_sent": ch.sent, "bytes_received": ch.received, "seconds": time.perf_counter() - start}
    write_json(a.out, out)
    return out

"""The third party's process (`ppml coverage serve`): holds the customer list, answers one NSO.

It reads and normalises its list before it listens, pads its distinct keys with random dummies to
the agreed size (so that its list's size stays hidden from the NSO), accepts one connection on
127.0.0.1, checks that the NSO speaks the same protocol with the same settings (refusing with the
reason otherwise, and refusing key sets below its minimum), runs its side of the PSI and receives
the released estimate - which, with the NSO's number of keys, is all it learns.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from datasets.atomic import write_json
from datasets.errors import UserError

from .config import NORMALISATION, PROTOCOL, ProtocolSettings
from .keys import read_list, source_keys, source_match_keys
from .psi import ThirdPartyPSI, version
from .psi_x25519 import POINT, ThirdPartyX25519
from .wire import Channel, PeerError, server_context


@dataclass
class ServeArgs:
    source: Path
    out: Path
    protocol: ProtocolSettings
    port: int = 0
    ready_file: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    timeout_s: float = 600.0
    transcript: Path | None = None
    min_nso_keys: int = 100  # a smaller set would let the NSO learn single customers' membership


def _check_pad(n: int, pad_to: int | None) -> int:
    """The size the set is padded to; UserError if the list has more keys."""
    if pad_to is not None and n > pad_to:
        raise UserError(f"the list has {n:,} distinct keys, more than the agreed padding of {pad_to:,}; "
                        "agree a larger --pad-to with the NSO")
    return n if pad_to is None else pad_to


def _padded(keys: list[str], pad_to: int | None) -> list[str]:
    if _check_pad(len(keys), pad_to) == len(keys):
        return keys
    return keys + [f"DUMMY|{secrets.token_hex(16)}" for _ in range(pad_to - len(keys))]


def _check_hello(hello: dict, settings: ProtocolSettings, min_keys: int = 1) -> str | None:
    """Why the NSO's settings cannot be served, or None."""
    mine = {"protocol": PROTOCOL, "normalisation": NORMALISATION, **settings.model_dump()}
    diff = [f"{k} = {hello.get(k)!r} (this side: {v!r})" for k, v in mine.items() if hello.get(k) != v]
    if diff:
        return "mismatched protocol settings: " + "; ".join(diff)
    if not isinstance(hello.get("client_size"), int) or hello["client_size"] < 1:
        return f"client_size = {hello.get('client_size')!r}: the NSO must send at least one key"
    if hello["client_size"] < min_keys:
        return (f"the NSO sends {hello['client_size']:,} keys, fewer than this third party's minimum of {min_keys:,} "
                "(--min-nso-keys): the exact intersection of so few keys would reveal single customers")
    return None


def _answer(ch: Channel, keys: list[str], padded: list[str], hello: dict, p: ProtocolSettings) -> None:
    """The third party's SETUP and RESPONSE."""
    if p.method != "x25519":
        side = ThirdPartyPSI()
        ch.send("SETUP", side.setup(padded, hello["client_size"], p.fpr, p.data_structure))
        ch.send("RESPONSE", side.respond(ch.receive("REQUEST")))
        return
    side = ThirdPartyX25519(p.workers, len(p.match_keys))
    ch.send("SETUP", side.setup(keys, p.pad_to))
    request = ch.receive("REQUEST")
    expected = hello["client_size"] * len(p.match_keys) * POINT
    if len(request) != expected:
        ch.send("ERROR", {"reason": f"the request holds {len(request)} bytes, not {expected}"})
        raise PeerError(f"refused the NSO's request: {len(request)} bytes where its HELLO announced "
                        f"{hello['client_size']:,} persons x {len(p.match_keys)} keys ({expected} bytes)")
    ch.send("RESPONSE", side.respond(request))


def serve(a: ServeArgs) -> dict:
    if a.protocol.method == "x25519":
        keys, repeats = source_match_keys(read_list(a.source), str(a.source), tuple(a.protocol.match_keys))
        padded, padded_to = [], _check_pad(len(keys), a.protocol.pad_to)  # dummies: random points (psi_x25519.py)
    else:
        keys, repeats = source_keys(read_list(a.source), str(a.source))
        padded = _padded(keys, a.protocol.pad_to)
        padded_to = len(padded)
    listener = socket.create_server(("127.0.0.1", a.port))
    listener.settimeout(a.timeout_s)
    if a.ready_file:
        a.ready_file.write_text(str(listener.getsockname()[1]))
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        raise PeerError(f"no NSO connected within {a.timeout_s:g} s") from None
    finally:
        listener.close()
    if a.cert and a.key:
        try:
            conn = server_context(a.cert, a.key).wrap_socket(conn, server_side=True)
        except OSError as exc:
            raise PeerError(f"the TLS handshake with the NSO failed ({exc})") from None
    ch = Channel(conn, a.timeout_s, a.transcript)
    start = time.perf_counter()
    try:
        hello = ch.receive("HELLO")
        problem = _check_hello(hello, a.protocol, a.min_nso_keys)
        if problem:
            ch.send("ERROR", {"reason": problem})
            raise PeerError(f"refused the NSO: {problem}")
        ch.send("HELLO", {"protocol": PROTOCOL, "psi": version(a.protocol.method)})
        _answer(ch, keys, padded, hello, a.protocol)
        result = ch.receive("RESULT")
        ch.send("ACK", {"received": True})
    finally:
        ch.close()
    learned = {"nso_keys": hello["client_size"], "released": result, "distinct_keys": len(keys),
               "repeats_dropped": repeats, "padded_to": padded_to, "bytes_sent": ch.sent,
               "bytes_received": ch.received, "seconds": time.perf_counter() - start}
    write_json(a.out, learned)
    return learned


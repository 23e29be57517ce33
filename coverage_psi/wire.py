"""Framed messages between the two parties over TCP on 127.0.0.1, with TLS when asked.

A frame is a 4-byte length, a 1-byte type and the payload (JSON for HELLO, RESULT, ACK and ERROR;
the PSI library's serialized protobufs for SETUP, REQUEST and RESPONSE). Each side counts the bytes
it sends and receives, and can keep a transcript of every frame (what a wire tap would see before
TLS) for the test that no identifier crosses. A peer that disconnects, sends garbage or stays silent
past the timeout ends the exchange with a PeerError naming what happened.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
from pathlib import Path

from datasets.errors import UserError

TYPES = {"HELLO": 1, "SETUP": 2, "REQUEST": 3, "RESPONSE": 4, "RESULT": 5, "ACK": 6, "ERROR": 7}
NAMES = {v: k for k, v in TYPES.items()}
MAX_FRAME = 1 << 31


class PeerError(UserError):
    """The other party broke the protocol, refused it, or went away."""


class Channel:
    """One connection: send/receive frames, count bytes, optionally record a transcript."""

    def __init__(self, sock: socket.socket, timeout: float, transcript: Path | None = None) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.sent = self.received = 0
        self.transcript = transcript.open("wb") if transcript else None

    def send(self, kind: str, payload: bytes | dict) -> None:
        body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        frame = struct.pack(">IB", len(body), TYPES[kind]) + body
        self._record(b"SENT", frame)
        try:
            self.sock.sendall(frame)
        except OSError as exc:
            raise PeerError(f"the other party went away while {kind} was sent ({exc})") from None
        self.sent += len(frame)

    def _exactly(self, n: int, waiting_for: str) -> bytes:
        chunks, got = [], 0
        while got < n:
            try:
                chunk = self.sock.recv(min(n - got, 1 << 20))
            except socket.timeout:
                raise PeerError(f"no {waiting_for} from the other party within {self.sock.gettimeout():g} s") from None
            except ConnectionResetError:
                raise PeerError(f"the other party disconnected before sending {waiting_for} (connection reset)") from None
            except OSError as exc:
                raise PeerError(f"the connection broke while waiting for {waiting_for} ({exc})") from None
            if not chunk:
                raise PeerError(f"the other party disconnected before sending {waiting_for}")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def receive(self, expected: str) -> bytes | dict:
        """The next frame, which must be `expected` (an ERROR frame raises with the peer's reason)."""
        header = self._exactly(5, expected)
        length, kind = struct.unpack(">IB", header)
        if kind not in NAMES or length > MAX_FRAME:
            raise PeerError(f"the other party sent an unknown frame (type {kind}, {length} bytes); expected {expected}")
        body = self._exactly(length, expected)
        self._record(b"RECV", header + body)
        self.received += 5 + length
        name = NAMES[kind]
        payload = json.loads(body) if name in ("HELLO", "RESULT", "ACK", "ERROR") else body
        if name == "ERROR":
            raise PeerError(f"the other party refused: {payload.get('reason')}")
        if name != expected:
            raise PeerError(f"the other party sent {name} where {expected} was expected")
        return payload

    def _record(self, direction: bytes, frame: bytes) -> None:
        if self.transcript:
            self.transcript.write(direction + struct.pack(">I", len(frame)) + frame)
            self.transcript.flush()

    def close(self) -> None:
        if self.transcript:
            self.transcript.close()
        try:
            self.sock.close()
        except OSError:
            pass


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def client_context(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def read_transcript(path: Path) -> list[tuple[str, bytes]]:
    """(direction, frame) pairs of a transcript file."""
    data, out, i = Path(path).read_bytes(), [], 0
    while i < len(data):
        direction = data[i:i + 4].decode()
        (n,) = struct.unpack(">I", data[i + 4:i + 8])
        out.append((direction, data[i + 8:i + 8 + n]))
        i += 8 + n
    return out

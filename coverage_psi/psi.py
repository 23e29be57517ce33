"""The private set intersection, by OpenMined's PSI library (ECDH-PSI; `openmined-psi` on PyPI): no
cryptography is written here.

The third party is the library's server: it encrypts its keys with its secret exponent and sends
them in a set structure (setup); the NSO, the client, encrypts its keys with its own exponent and
sends them (request); the server re-encrypts them and returns them shuffled (response); the client
removes its exponent and counts how many are in the server's structure. With
reveal_intersection=False the client learns the intersection's size only - not which of its keys
are in it - and the server learns the number of the client's keys; neither sees a key or its hash.
"""

from __future__ import annotations

import private_set_intersection.python as psi

STRUCTURES = {"raw": psi.DataStructure.RAW, "gcs": psi.DataStructure.GCS,
              "bloom_filter": psi.DataStructure.BLOOM_FILTER}


class ThirdPartyPSI:
    def __init__(self) -> None:
        self._server = psi.server.CreateWithNewKey(False)  # cardinality only

    def setup(self, keys: list[str], client_size: int, fpr: float, structure: str) -> bytes:
        return self._server.CreateSetupMessage(fpr, client_size, keys, STRUCTURES[structure]).SerializeToString()

    def respond(self, request: bytes) -> bytes:
        req = psi.Request()
        req.ParseFromString(request)
        return self._server.ProcessRequest(req).SerializeToString()


class NSOPSI:
    def __init__(self) -> None:
        self._client = psi.client.CreateWithNewKey(False)  # cardinality only

    def request(self, keys: list[str]) -> bytes:
        return self._client.CreateRequest(keys).SerializeToString()

    def intersection_size(self, setup: bytes, response: bytes) -> int:
        s, r = psi.ServerSetup(), psi.Response()
        s.ParseFromString(setup)
        r.ParseFromString(response)
        return int(self._client.GetIntersectionSize(s, r))


def version(method: str = "ecdh-p256") -> str:
    """The PSI implementation a method runs on, for manifests and the handshake."""
    if method == "x25519":
        from .psi_x25519 import version as x25519_version

        return x25519_version()
    return f"openmined-psi {psi.__version__}"

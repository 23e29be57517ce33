"""Certificates and keys for a deployment run: a run-local CA, the SuperLink's TLS certificate for
127.0.0.1/localhost, and one SuperNode authentication key pair per NSO.

Made fresh for every run with `cryptography` (as Flower's own examples do with openssl and
ssh-keygen), so no key material is shared between runs or committed anywhere.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nso-ppml run"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls(out: Path, days: int = 7) -> dict[str, Path]:
    """CA certificate, SuperLink certificate (SAN 127.0.0.1, localhost) and its key."""
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = (x509.CertificateBuilder().subject_name(_name("nso-ppml run CA")).issuer_name(_name("nso-ppml run CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA384()))
    key = ec.generate_private_key(ec.SECP384R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    cert = (x509.CertificateBuilder().subject_name(_name("superlink")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA384()))
    pem = serialization.Encoding.PEM
    return {
        "ca": _write(out / "ca.crt", ca.public_bytes(pem)),
        "cert": _write(out / "server.pem", cert.public_bytes(pem)),
        "key": _write(out / "server.key", key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()), private=True),
    }


def make_node_keys(out: Path, name: str) -> tuple[Path, Path]:
    """An ECDSA P-384 key pair for SuperNode authentication, in OpenSSH format (as ssh-keygen
    -t ecdsa -b 384 writes it, which is what flower-supernode reads)."""
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private = _write(out / f"{name}.key", key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.OpenSSH,
                                                            serialization.NoEncryption()), private=True)
    public = _write(out / f"{name}.pub", key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                       serialization.PublicFormat.OpenSSH))
    return private, public

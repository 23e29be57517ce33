"""`ppml bench coverage`: the coverage protocols end to end at 1,000,000 x 1,000,000 identifiers on
this machine (both parties' processes, TLS, the agreed padding), side by side on the same lists:
OpenMined's ECDH-PSI on P-256, DH-PSI on Curve25519 with the exact key, and the same with four match
keys counted as a union; and a plain insecure hash join of the same lists in the same run: time,
bytes on the wire, identifiers per second, the estimate without a clerical sample."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

TARGET_IDS_PER_S = 20_000


def _hash_join(run_dir: Path) -> tuple[float, int, int]:
    """The insecure baseline: each side sends SHA-256 hashes of its normalised keys; (seconds,
    bytes, matches)."""
    from coverage_psi.keys import register_keys, source_keys

    start = time.perf_counter()
    reg = register_keys(pd.read_csv(run_dir / "nso" / "register.csv", dtype=str, keep_default_na=False), "r")
    src, _ = source_keys(pd.read_csv(run_dir / "third_party" / "source.csv", dtype=str, keep_default_na=False), "s")
    sent = {hashlib.sha256(k.encode()).digest() for k in src}
    matched = sum(hashlib.sha256(k.encode()).digest() in sent for k in reg)
    return time.perf_counter() - start, 32 * len(src), matched


KEYS_CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "coverage_keys.toml"


def _protocols() -> tuple[tuple[str, list[str]], ...]:
    """OpenMined's and Curve25519's protocols with the exact key, and the shipped match keys."""
    keys = tomllib.loads(KEYS_CONFIG.read_text())["coverage"]["protocol"]["match_keys"]
    return ("ecdh-p256", ["exact"]), ("x25519", ["exact"]), ("x25519", keys)


def _one(cfg, method: str, keys: list[str], tmp: str, progress: Callable[[str], None]) -> dict:
    from coverage_psi.run import run_coverage

    setting = cfg.protocol.model_copy(update={"method": method, "match_keys": keys})
    name = f"{method}-{len(keys)}key"
    start = time.perf_counter()
    run = run_coverage(cfg.model_copy(update={"output_dir": tmp, "protocol": setting}), Path(tmp) / name)
    wall = time.perf_counter() - start
    c = json.loads((run / "summary.json").read_text())["coverage"]
    ids = c["register_size"] + c["source_records"]
    row = {"method": method, "match_keys": keys, "protocol_s": c["protocol_seconds"], "end_to_end_s": wall,
           "bytes_on_wire": c["bytes_nso_sent"] + c["bytes_third_party_sent"], "matched": c["matched"],
           "coverage": c["coverage"], "true_coverage": c["true_coverage"],
           "identifiers_per_s": ids / c["protocol_seconds"], "run": run}
    progress(f"  {method}, {len(keys)} key(s): {ids:,} identifiers in {row['protocol_s']:.1f} s of protocol "
             f"({wall:.0f} s end to end, lists simulated and written included); {row['bytes_on_wire'] / 1e6:.1f} MB on "
             f"the wire; {row['identifiers_per_s']:,.0f} identifiers/s; coverage {c['coverage']:.4f} "
             f"(true {c['true_coverage']:.4f}, no clerical sample)")
    return row


def bench_coverage(size: int = 1_000_000, progress: Callable[[str], None] = print) -> dict:
    """Each protocol on the same simulated lists (one seed), one after another, then the hash join."""
    from coverage_psi.config import CoverageConfig

    cfg = CoverageConfig.model_validate({"name": "bench", "design": {"clerical_sample": 0}, "data": {
        "register_size": size, "coverage": 0.9, "outside_share": 0.09, "duplicate_rate": 0.02}})
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_one(cfg, method, keys, tmp, progress) for method, keys in _protocols()]
        first = json.loads((rows[0]["run"] / "summary.json").read_text())["coverage"]
        plain_s, plain_bytes, plain_matched = _hash_join(rows[0]["run"])
    for row in rows:
        row.pop("run")
    faster = rows[1]
    out = {"benchmark": "coverage", "register": first["register_size"], "source_records": first["source_records"],
           "protocols": rows, "plain_hash_join_s": plain_s, "plain_hash_join_bytes": plain_bytes,
           "plain_matched": plain_matched, "identifiers_per_s": faster["identifiers_per_s"],
           "openmined_identifiers_per_s": rows[0]["identifiers_per_s"],
           "ratio_to_hash_join": faster["protocol_s"] / plain_s, "target_identifiers_per_s": TARGET_IDS_PER_S,
           "same_exact_matches": rows[0]["matched"] == rows[1]["matched"] == plain_matched}
    out["meets_target"] = out["identifiers_per_s"] >= TARGET_IDS_PER_S
    progress(f"  plain SHA-256 hash join of the same lists: {plain_s:.1f} s, {plain_bytes / 1e6:.1f} MB; "
             f"same exact-key matches in both protocols and the join: {out['same_exact_matches']}")
    return out

"""`ppml bench coverage`: the coverage protocol end to end at 1,000,000 x 1,000,000 identifiers on
this machine (both parties' processes, TLS, the agreed padding), against a plain insecure hash join
of the same lists in the same run: time, bytes on the wire, identifiers per second."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
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


def bench_coverage(size: int = 1_000_000, progress: Callable[[str], None] = print) -> dict:
    from coverage_psi.config import CoverageConfig
    from coverage_psi.run import run_coverage

    cfg = CoverageConfig.model_validate({"name": "bench", "data": {
        "register_size": size, "coverage": 0.9, "outside_share": 0.09, "duplicate_rate": 0.02}})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = run_coverage(cfg.model_copy(update={"output_dir": tmp}), Path(tmp) / "run")
        wall = time.perf_counter() - start
        c = json.loads((run / "summary.json").read_text())["coverage"]
        plain_s, plain_bytes, plain_matched = _hash_join(run)
    ids = c["register_size"] + c["source_records"]
    out = {"benchmark": "coverage", "register": c["register_size"], "source_records": c["source_records"],
           "protocol_s": c["protocol_seconds"], "end_to_end_s": wall,
           "bytes_on_wire": c["bytes_nso_sent"] + c["bytes_third_party_sent"], "matched": c["matched"],
           "plain_hash_join_s": plain_s, "plain_hash_join_bytes": plain_bytes, "plain_matched": plain_matched,
           "identifiers_per_s": ids / c["protocol_seconds"], "ratio_to_hash_join": c["protocol_seconds"] / plain_s,
           "target_identifiers_per_s": TARGET_IDS_PER_S}
    out["meets_target"] = out["identifiers_per_s"] >= TARGET_IDS_PER_S
    progress(f"  PSI: {ids:,} identifiers in {out['protocol_s']:.1f} s of protocol ({wall:.0f} s end to end, "
             f"lists simulated and written included); {out['bytes_on_wire'] / 1e6:.1f} MB on the wire")
    progress(f"  plain SHA-256 hash join of the same lists: {plain_s:.1f} s, {plain_bytes / 1e6:.1f} MB; "
             f"same matches: {plain_matched == c['matched']}")
    return out

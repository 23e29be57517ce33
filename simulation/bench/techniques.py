"""`ppml bench techniques`: plain FedAvg, SecAgg+ and CKKS aggregation side by side, on the same
data, seed and settings, at 3, 8 and 16 NSOs (the UNECE comparison of techniques).

Models: each method rounds the same updates with its own stochastic draws, so one round agrees
within twice SecAgg+'s quantization bound (tests/test_ckks_aggregation.py) and later rounds drift
as two trainings do. The bench runs one more round of each at every NSO count to show the first,
and gives the final models' largest difference and their macro-F1s.

Round time is the median over rounds 2.. (round 1 of CKKS also sets up its keys, reported apart;
SecAgg+ sets up its keys inside every round). Bytes are measured from the replies the server
received in the training stages (the local grid keeps a copy), per NSO per round.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from datasets.prepared import prepare
from datasets.synthetic.generator import GeneratorSettings, generate
from server.ckks_aggregation import payload_bytes

from ..config import ExperimentConfig
from ..engines.local import run_local
from ..experiment import app_run_config
from ..results.metrics import read_metrics

HE_TARGET_RATIO = 3.0  # CKKS round <= 3x a SecAgg+ round at 8 NSOs
METHODS = ("plain", "secaggplus", "ckks")
NSO_COUNTS = (3, 8, 16)
TRUST = {  # what docs/secure_aggregation.md argues; the bench measures the rest
    "plain": {"server_learns": "every NSO's update", "collusions": "none needed", "dropouts": "any"},
    "secaggplus": {"server_learns": "the sum only", "collusions": "fewer than the reconstruction threshold",
                   "dropouts": "while the survivors reach the threshold"},
    "ckks": {"server_learns": "the sum only", "collusions": "none: the server with any one NSO reads every update",
             "dropouts": "any while training; any decryptor but the last; none during key set-up"},
}


def windows_for(n_nsos: int) -> pd.DataFrame:
    """3: DE, FR, IT of the default data; 8: the default data; 16: each default NSO split in two by person."""
    if n_nsos == 3:
        return generate(GeneratorSettings(nsos=["DE", "FR", "IT"])).windows
    w = generate(GeneratorSettings()).windows.copy()
    if n_nsos == 16:
        nso = w["nso"].astype(str).to_numpy().copy()
        half = pd.factorize(w["person_id"].astype(str))[0] % 2
        w["nso"] = pd.Categorical([f"{c}{'ab'[h]}" for c, h in zip(nso, half)])
    return w


def _reply_bytes(msg) -> int:
    """Payload bytes of a reply: its arrays and the bytes values of its config records."""
    if not msg.has_content():
        return 0
    arrays = sum(len(a.data) for rec in msg.content.array_records.values() for a in rec.values())
    return arrays + sum(payload_bytes(dict(rec)) for rec in msg.content.config_records.values())


def _one(method: str, data_dir: str, out: Path, rounds: int, n_nsos: int) -> dict:
    sa = {"enabled": method != "plain", **({"method": method} if method != "plain" else {})}
    cfg = ExperimentConfig.model_validate({"federation": {"rounds": rounds}, "secure_aggregation": sa})
    grid = run_local(app_run_config(cfg, data_dir, str(out), quiet=True), data_dir, record_replies=True, workers=1)
    rows = [r for r in read_metrics(out / "metrics.jsonl").rows if r["round"] > 0]
    fit_bytes = sum(_reply_bytes(m) for m in grid.received if m.metadata.message_type == "train")
    final = rows[-1]
    return {"round_s": float(np.median([r["round_s"] for r in rows[1:]] or [rows[0]["round_s"]])),
            "key_setup_s": rows[0].get("secagg.stage_s.keys"),
            "bytes_per_nso_round": fit_bytes / (n_nsos * rounds),
            "stage_s": {k.split(".")[-1]: round(float(np.median([r.get(k, 0.0) for r in rows[1:] or rows])), 4)
                        for k in final if k.startswith("secagg.stage_s.")},
            "macro_f1": final.get("central.macro_f1"), "model": dict(np.load(out / "model.npz")),
            "quantization_error": final.get("secagg.quantization_error_bound")}


def _difference(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def bench_techniques(rounds: int = 3, counts: tuple[int, ...] = NSO_COUNTS, progress=print) -> dict:
    """Every method at every NSO count, one run each, same seed; the table and the 8-NSO verdict."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    table: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            data_dir = str(Path(tmp) / f"data{n}")
            prepare(windows_for(n), data_dir, 0, 0.2, 0.1)
            table[n] = {}
            for method in METHODS:
                table[n][method] = _one(method, data_dir, Path(tmp) / f"{method}-{n}", rounds, n)
                progress(f"  {n} NSOs, {method}: {table[n][method]['round_s']:.3f} s a round")
            first = [_one(m, data_dir, Path(tmp) / f"{m}-{n}-r1", 1, n) for m in ("secaggplus", "ckks")]
            table[n]["first_round"] = {"max_model_difference": _difference(first[0]["model"], first[1]["model"]),
                                       "allowed": 2 * first[0]["quantization_error"]}
    out: dict = {"benchmark": "techniques", "rounds": rounds, "trust": TRUST, "target_ratio": HE_TARGET_RATIO,
                 "table": {}}
    for n, row in table.items():
        he, sec = row["ckks"], row["secaggplus"]
        out["table"][n] = {m: {k: v for k, v in r.items() if k != "model"} for m, r in row.items() if m in METHODS}
        out["table"][n]["ckks_vs_secagg"] = {"ratio": he["round_s"] / sec["round_s"],
                                             "max_model_difference": _difference(he["model"], sec["model"]),
                                             "macro_f1_difference": abs(he["macro_f1"] - sec["macro_f1"]),
                                             "first_round": row["first_round"]}
    at8 = out["table"].get(8, {}).get("ckks_vs_secagg")
    out["meets_target"] = bool(at8 and at8["ratio"] <= HE_TARGET_RATIO) if at8 else None
    return out

"""Per-round records: appended and flushed as each round ends, so a crash loses no finished round."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from datasets.atomic import append_line


def federated_means(per_nso: list[tuple[int, dict[str, Any]]]) -> dict[str, float]:
    """Test-window weighted accuracy and macro-F1 over the NSOs' test persons (the validation
    persons, disjoint from the held-out ones); empty without test windows."""
    total = sum(n for n, _ in per_nso)
    if not total:
        return {}
    return {f"federated.{k}": sum(n * m[k] for n, m in per_nso) / total for k in ("accuracy", "macro_f1")}


def progress_line(row: dict[str, Any], rounds: int, randomness: str | None = None) -> str:
    """The one-line progress report of a finished round (every engine prints this)."""
    acc, f1 = row.get("central.accuracy", float("nan")), row.get("central.macro_f1", float("nan"))
    eps = {k.split(".")[1]: v for k, v in row.items() if k.startswith("fit.") and k.endswith(".epsilon")}
    privacy = (f"  epsilon {max(eps.values()):.2f} max ("
               + " ".join(f"{n} {e:.2f}" for n, e in eps.items()) + ")") if eps else ""
    if "dp.epsilon" in row:  # federation scope: one aggregate epsilon, and each NSO share's own
        privacy = f"  epsilon {row['dp.epsilon']:.2f} (aggregate; {row['dp.nso_share_epsilon']:.2f} per NSO share)"
    if privacy and randomness == "reproducible":
        privacy += " [noise reproducible from config]"
    wb = row.get("central.wellbeing_mae")
    wb_text = f"  well-being MAE {wb:.3f}" if wb is not None and wb == wb else ""  # no ratings in the data: left out
    model = (f"accuracy {acc:.3f}  macro-F1 {f1:.3f}{wb_text}" if "central.accuracy" in row
             else "not evaluated (federation.evaluate_every)")
    return f"round {row['round']:>3}/{rounds}  {model}{privacy}  ({row['round_s']:.1f} s)"


class RoundRecorder:
    """Collects central, federated and training metrics of each round and writes metrics.jsonl."""

    def __init__(self, output_dir: str | None, rounds: int, quiet: bool = False, randomness: str | None = None) -> None:
        self.path = Path(output_dir) / "metrics.jsonl" if output_dir else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
        self.rounds = rounds
        self.quiet = quiet
        self.randomness = randomness  # where the NSOs' DP noise comes from (clients/privacy/randomness.py)
        self.current: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.start = time.perf_counter()
        self.round_start = self.start

    def central(self, server_round: int, metrics: dict[str, float]) -> None:
        self.current.setdefault("round", server_round)
        self.current.update({f"central.{k}": v for k, v in metrics.items()})
        if server_round == 0:  # initial model: no fit or federated evaluation follows
            self.finish_round()

    def fit(self, per_nso: list[dict[str, Any]]) -> None:
        for m in per_nso:
            nso = m["nso"]
            for k, v in m.items():
                if k != "nso":
                    self.current[f"fit.{nso}.{k}"] = v

    def federated(self, per_nso: list[tuple[int, dict[str, Any]]]) -> None:
        """The NSOs' own evaluation; in a DP run they keep it (clients/local_log.py) and send none."""
        per_nso = [(n, m) for n, m in per_nso if "accuracy" in m]
        for n, m in per_nso:
            for k in ("accuracy", "macro_f1", "wellbeing_mae"):
                self.current[f"nso.{m['nso']}.{k}"] = m[k]
        self.current.update(federated_means(per_nso))
        self.finish_round()

    @staticmethod
    def failure(output_dir: str | None, reason: str) -> None:
        """Record that the ServerApp failed (appended, so the finished rounds stay)."""
        if output_dir:
            path = Path(output_dir) / "metrics.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            append_line(path, {"event": "failed", "reason": reason})

    def save_model(self, weights: list) -> None:
        """The released global model, as the coordinator holds it after the last round."""
        if self.path:
            import numpy as np

            tmp = self.path.with_name(".model.tmp.npz")
            np.savez(tmp, *weights)
            tmp.replace(self.path.with_name("model.npz"))

    def event(self, name: str, **fields: Any) -> None:
        """A line that is not a round (settings, a planned stop)."""
        if self.path:
            append_line(self.path, {"event": name, **fields})

    def secagg_settings(self, max_weight: float, clipping_range: float, quantization_range: int) -> None:
        self.event("secagg_settings", max_weight=max_weight, clipping_range=clipping_range,
                   quantization_range=quantization_range)

    def secagg_round(self, info: dict) -> None:
        """What the SecAgg+ protocol did this round (called when the workflow returns)."""
        self.current.update({"secagg.completed": info["completed"], "secagg.stage": info["stage"],
                             "secagg.num_shares": info["num_shares"], "secagg.threshold": info["threshold"],
                             "secagg.sampled": info["sampled"], "secagg.active": info["active"],
                             **{f"secagg.stage_s.{k}": round(v, 4) for k, v in info["stage_s"].items()},
                             **{f"secagg.{k}": info[k] for k in ("bytes_up", "bytes_down", "decrypt_attempts", "ckks_residual",
                                                           "ckks_error_bound") if k in info}})

    def secagg_bound(self, bound: float) -> None:
        self.current["secagg.quantization_error_bound"] = bound

    def dropped(self, server_round: int, reasons: list[str]) -> None:
        """NSOs lost in this round (training and evaluation both add to the round's list)."""
        earlier = json.loads(self.current.get("secagg.dropped", "[]"))
        self.current["secagg.dropped"] = json.dumps(earlier + reasons)
        if not self.quiet:
            print(f"round {server_round}: {len(reasons)} NSO(s) dropped out, aggregated without them: "
                  + "; ".join(reasons), file=sys.stderr, flush=True)

    def stopped(self, reason: str) -> None:
        """A planned early end (privacy budget spent): recorded as an event line, not a round."""
        self.event("stopped", after_round=self.rows[-1]["round"] if self.rows else 0, reason=reason,
                   **{k: v for k, v in self.current.items() if k.startswith("fit.")})
        if not self.quiet:
            print(f"stopped: {reason}", file=sys.stderr, flush=True)

    def finish_round(self) -> None:
        now = time.perf_counter()
        row = {"round": self.current.get("round", len(self.rows)), "round_s": round(now - self.round_start, 4),
               "elapsed_s": round(now - self.start, 4), **self.current}
        self.rows.append(row)
        if self.path:
            append_line(self.path, row)
        if not self.quiet:
            print(progress_line(row, self.rounds, self.randomness), file=sys.stderr, flush=True)
        self.current = {}
        self.round_start = now

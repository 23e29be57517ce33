"""summary.json: what a finished run reports, computed from its metrics.jsonl (docs/results.md).

Privacy and secure-aggregation blocks carry what a reviewer needs to recompute or check the
claims: each NSO's accountant history (dp-accounting recomputes every epsilon from it) and what
SecAgg+ did in every round.
"""

from __future__ import annotations

import json
from typing import Any

from clients.privacy.accounting import pld_epsilon
from datasets.errors import UserError

from ..config import ExperimentConfig

from ..engines.base import POOLED


class RunFailed(UserError):
    """The federated run did not complete; the message says which round and why."""


def secure_aggregation_summary(cfg: ExperimentConfig, rows: list[dict[str, Any]], events: list[dict[str, Any]],
                               nsos: list[str]) -> dict[str, Any]:
    """What secure aggregation did over the run (docs/secure_aggregation.md); shares and threshold
    are SecAgg+'s (None under CKKS, where one NSO's key decrypts)."""
    if not cfg.secure_aggregation.enabled:
        return {"enabled": False}
    settings = next((e for e in events if e["event"] == "secagg_settings"), {})
    fitted = [r for r in rows if r["round"] > 0]
    shares = cfg.secure_aggregation.method == "secaggplus"
    return {
        "enabled": True, "method": cfg.secure_aggregation.method,
        "num_shares": max((r.get("secagg.num_shares") or 0 for r in fitted), default=None) if shares else None,
        "threshold": max((r.get("secagg.threshold") or 0 for r in fitted), default=None) if shares else None,
        "bytes_up": int(sum(r.get("secagg.bytes_up", 0) or 0 for r in fitted)) if not shares else None,
        "ckks_error": max((r.get("secagg.ckks_residual", 0.0) for r in fitted), default=0.0) if not shares else None,
        "ckks_error_bound": max((r.get("secagg.ckks_error_bound", 0.0) for r in fitted), default=0.0)
        if not shares else None,
        "rounds_completed": sum(1 for r in fitted if r.get("secagg.completed")),
        "dropped": [{"round": r["round"], "reasons": json.loads(r["secagg.dropped"])}
                    for r in fitted if r.get("secagg.dropped")],
        "clipped_values": int(sum(r.get(f"fit.{n}.secagg_clipped", 0) or 0 for r in fitted for n in nsos)),
        "quantization_error": max((r.get("secagg.quantization_error_bound", 0.0) for r in fitted), default=0.0),
        "max_weight": settings.get("max_weight"), "clipping_range": settings.get("clipping_range"),
        "quantization_range": settings.get("quantization_range"),
    }


def federation_privacy_summary(cfg: ExperimentConfig, rows: list[dict[str, Any]],
                               events: list[dict[str, Any]]) -> dict[str, Any]:
    """The federation scope: the aggregate's epsilon (what the server and the released model
    reveal) and the weaker one of each NSO's own noise share (if secure aggregation were broken),
    with the histories dp-accounting recomputes them from (docs/privacy.md)."""
    plan = next((e for e in events if e["event"] == "federation_dp"), {})
    accounted = [r for r in rows if "dp.epsilon" in r]
    history = [{"round": r["round"], "sample_rate": r["dp.sample_rate"], "noise_multiplier": r["dp.noise_multiplier"],
                "steps": 1} for r in accounted]
    k_min = plan.get("min_nsos", 1)
    share = [{**h, "noise_multiplier": h["noise_multiplier"] / k_min ** 0.5} for h in history]
    last = accounted[-1] if accounted else {}
    delta = plan.get("delta", cfg.privacy.delta)
    eps, share_eps = (_tightest(last.get(k, 0.0), h, delta)
                      for k, h in (("dp.epsilon", history), ("dp.nso_share_epsilon", share)))
    return {
        "enabled": True, "scope": "federation", "unit": "person", "epsilon": eps[0], "epsilon_by": eps[1],
        "epsilon_accounted": last.get("dp.epsilon", 0.0), "nso_share_epsilon": share_eps[0],
        "nso_share_epsilon_accounted": last.get("dp.nso_share_epsilon", 0.0), "delta": cfg.privacy.delta,
        "accountant": cfg.privacy.accountant, "max_grad_norm": cfg.privacy.max_grad_norm,
        "effective_clip": plan.get("effective_clip"), "min_nsos": k_min, "nsos": plan.get("nsos"),
        "persons": plan.get("persons"), "noise_std_per_nso": plan.get("noise_std"),
        "grid_step": plan.get("grid_step"), "target_epsilon": cfg.privacy.target_epsilon,
        "budget": cfg.privacy.budget, "history": {"federation": history}, "nso_share_history": share,
    }


def _tightest(accounted: float, history: list[dict[str, Any]], delta: float | None) -> tuple[float, str]:
    """(epsilon, which accountant gave it): the in-run accountant's, or dp-accounting's PLD on the
    same history where that is tighter - both are upper bounds, so the smaller one holds."""
    if not history or not delta:
        return accounted, "accountant"
    pld = pld_epsilon([(h["noise_multiplier"], h["sample_rate"], h["steps"]) for h in history], delta)
    return (pld, "pld") if pld < accounted else (accounted, "accountant")


def _lost_replies(history: list[dict[str, Any]], entry: dict[str, Any], accounted: int | None) -> None:
    """An NSO that trained in a round whose reply never reached the server (a timeout) still spent
    that round: its ledger counts it, so its next reply's `rounds_accounted` exceeds the rounds the
    server saw. The missing rounds ran with the same noise, rate and steps (fixed for the run), and
    are added to the history as such, marked `reply_lost`, so the history reproduces the epsilon."""
    if accounted is None:
        return
    for _ in range(int(accounted) - len(history) - 1):
        history.append({**entry, "round": None, "reply_lost": True})


def privacy_summary(cfg: ExperimentConfig, rows: list[dict[str, Any]], nsos: list[str],
                    events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything needed to recompute each NSO's epsilon with another accountant (docs/privacy.md);
    for the centralized engine, the pooled curator's (its one history, `pooled`)."""
    if not cfg.privacy.enabled:
        return {"enabled": False}
    centralized = cfg.engine.name == "centralized"
    if cfg.privacy.federation and not centralized:
        return federation_privacy_summary(cfg, rows, events or [])
    if centralized:
        nsos = [POOLED]
    history: dict[str, list[dict[str, Any]]] = {n: [] for n in nsos}
    epsilon: dict[str, float] = {}
    exhausted: dict[str, int | None] = {n: None for n in nsos}
    for row in rows:
        for n in nsos:
            steps = row.get(f"fit.{n}.steps")
            if steps is None:
                continue
            epsilon[n] = row[f"fit.{n}.epsilon"]
            if row.get(f"fit.{n}.budget_exhausted") and exhausted[n] is None:
                exhausted[n] = row["round"]
            if steps > 0:
                entry = {"round": row["round"], "sample_rate": row[f"fit.{n}.sample_rate"],
                         "noise_multiplier": row[f"fit.{n}.noise_multiplier"], "steps": int(steps)}
                _lost_replies(history[n], entry, row.get(f"fit.{n}.rounds_accounted"))
                history[n].append(entry)
    tight = {n: _tightest(e, history[n], cfg.privacy.delta) for n, e in epsilon.items()}
    return {
        "enabled": True, "scope": "centralized" if centralized else "nso",
        "epsilon": max(e for e, _ in tight.values()) if tight else 0.0,
        "per_nso_epsilon": {n: e for n, (e, _) in tight.items()},
        "per_nso_epsilon_by": {n: by for n, (_, by) in tight.items()}, "per_nso_epsilon_accounted": epsilon,
        "delta": cfg.privacy.delta, "unit": cfg.privacy.unit, "accountant": cfg.privacy.accountant,
        "max_grad_norm": cfg.privacy.max_grad_norm, "target_epsilon": cfg.privacy.target_epsilon,
        "budget": cfg.privacy.budget, "budget_exhausted_round": exhausted, "history": history,
    }


def summarise(rows: list[dict[str, Any]], nsos: list[str], wall_s: float, labels: list[str]) -> dict[str, Any]:
    """Final and initial metrics and timing: the headline block of summary.json."""
    if not rows:
        raise RunFailed("the run recorded no rounds")
    last = rows[-1]
    return {
        "rounds_completed": int(last["round"]),
        "final": {
            "accuracy": last.get("central.accuracy"),
            "macro_f1": last.get("central.macro_f1"),
            "wellbeing_mae": last.get("central.wellbeing_mae"),
            "per_class_f1": {a: last.get(f"central.f1.{a}") for a in labels},
            "per_nso_accuracy": {n: last.get(f"nso.{n}.accuracy") for n in nsos},
            "per_nso_macro_f1": {n: last.get(f"nso.{n}.macro_f1") for n in nsos},
            "federated_accuracy": last.get("federated.accuracy"),
            "validation_macro_f1": last.get("federated.macro_f1"),
        },
        "initial": {"accuracy": rows[0].get("central.accuracy"), "macro_f1": rows[0].get("central.macro_f1")},
        "timing": {"wall_s": round(wall_s, 3), "rounds_s": round(sum(r["round_s"] for r in rows[1:]), 3)},
    }

"""The audit of one finished run: canary guesses -> empirical epsilon lower bound, and membership
inference on the real persons; the `audit` block of summary.json."""

from __future__ import annotations

import numpy as np
import torch

from clients.model import released_model
from clients.privacy.audit_canaries import direction_canaries
from clients.training import loss_fn
from datasets.features import encode
from datasets.prepared import load_holdout, load_partition
from datasets.table_schema import TableSchema

from ..results.metrics import read_metrics
from .canaries import Canaries
from .config import AuditConfig
from .membership import auc, person_losses, tpr_at_fpr
from .one_run import epsilon_lower_bound, guess, p_value
from .replay import replay_audit

NOMINAL_DELTA = 1e-5  # for runs without DP, which have no delta of their own


def per_nso_direction_canaries(cfg, n_nsos: int) -> int:
    """Update-direction canaries per NSO: an audit of the federation scope splits its canaries over
    the NSOs (clients/privacy/audit_canaries.py); 0 otherwise."""
    if not (cfg.audit.enabled and cfg.audit.server_view and cfg.privacy.federation):
        return 0
    return -(-cfg.audit.canaries // n_nsos)


def server_view(cfg, run_dir, nsos: list[str], delta: float) -> dict | None:
    """The one-run audit from the server's seat in the federation scope: each update-direction
    canary's score is its inner product with the sum over rounds of the aggregates SecAgg+ revealed
    (projecting out the aggregates' main directions was tried and lost power: the included
    canaries' own sum is one of those directions)."""
    path = run_dir / "server_view.npy"
    per = per_nso_direction_canaries(cfg, len(nsos))
    if not per or not path.exists():
        return None
    view = np.load(path)
    total = view.sum(axis=0)
    scores, included = [], []
    for nso in nsos:
        u, inc = direction_canaries(cfg.audit.seed, nso, per, view.shape[1])
        scores.append(u @ total)
        included.append(inc)
    scores, included = np.concatenate(scores), np.concatenate(included)
    m = len(scores)
    r, v = guess(scores, included, cfg.audit.guess_fraction)
    return {"canaries": m, "included": int(included.sum()), "guesses": r, "correct": v, "rounds": int(len(view)),
            "epsilon_lower_bound": epsilon_lower_bound(m, r, v, delta, cfg.audit.confidence),
            "canary_auc": auc(scores[included], scores[~included])}


def audit_unit(cfg: AuditConfig, privacy_enabled: bool, privacy_unit: str) -> str:
    """What a canary is: the run's privacy unit (persons for a non-private run) unless set."""
    return cfg.unit if cfg.unit != "auto" else (privacy_unit if privacy_enabled else "person")


@torch.no_grad()
def canary_scores(model, canaries: Canaries, schema: TableSchema, wellbeing_weight: float) -> np.ndarray:
    """Score of each canary: minus the mean loss of its windows under the released model."""
    x, y, wb = encode(canaries.windows, schema)
    loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y), torch.from_numpy(wb), wellbeing_weight,
                   model.n_classes, "none").numpy()
    m = len(canaries.included)
    return -np.bincount(canaries.index, weights=loss, minlength=m) / np.bincount(canaries.index, minlength=m)


def membership(model, data_dir: str, index: dict, wellbeing_weight: float) -> dict:
    """Loss-threshold attack per NSO: its own training persons against its test and held-out persons."""
    holdout, hold_nso = load_holdout(data_dir)
    per_nso, all_in, all_out = {}, [], []
    for k, nso in enumerate(index["nsos"]):
        part = load_partition(data_dir, nso)
        real = index["windows"][nso]["train_persons"] - index["windows"][nso].get("extra_train_persons", 0)
        members = -person_losses(model, *_fields(part.train), wellbeing_weight)[:real]
        mask = hold_nso == k
        out = np.concatenate([-person_losses(model, *_fields(part.test), wellbeing_weight),
                              -person_losses(model, holdout.x[mask], holdout.y[mask], holdout.wellbeing[mask],
                                             np.unique(holdout.person[mask], return_inverse=True)[1], wellbeing_weight)])
        per_nso[nso] = {"auc": auc(members, out), "tpr_at_1pct_fpr": tpr_at_fpr(members, out),
                        "members": int(len(members)), "non_members": int(len(out))}
        all_in.append(members)
        all_out.append(out)
    members, out = np.concatenate(all_in), np.concatenate(all_out)
    return {"mia_auc": auc(members, out), "mia_tpr_at_1pct_fpr": tpr_at_fpr(members, out), "mia_per_nso": per_nso}


def _fields(a):
    return a.x, a.y, a.wellbeing, a.person


def run_audit(cfg, run_dir, data_dir: str, index: dict, canaries: Canaries, schema: TableSchema,
              reported_epsilon: float | None) -> dict:
    """The summary's `audit` block (`cfg` is the run's ExperimentConfig)."""
    a: AuditConfig = cfg.audit
    model = released_model(run_dir / "model.npz", cfg.model, cfg.seed, index)
    torch.set_num_threads(1)
    scores = canary_scores(model, canaries, schema, cfg.model.wellbeing_weight)
    m = len(canaries.included)
    r, v = guess(scores, canaries.included, a.guess_fraction)
    delta = cfg.privacy.delta if cfg.privacy.enabled and cfg.privacy.delta else NOMINAL_DELTA
    out = {"canaries": m, "canary_unit": canaries.unit, "included": int(canaries.included.sum()), "guesses": r,
           "correct": v, "delta": delta, "confidence": a.confidence,
           "epsilon_lower_bound": epsilon_lower_bound(m, r, v, delta, a.confidence),
           "reported_epsilon": reported_epsilon,
           "p_value_at_reported_epsilon": p_value(m, r, v, reported_epsilon, delta) if reported_epsilon else None,
           "canary_auc": auc(scores[canaries.included], scores[~canaries.included])}
    if a.membership:
        out.update(membership(model, data_dir, index, cfg.model.wellbeing_weight))
    view = server_view(cfg, run_dir, index["nsos"], delta)
    if view is not None:
        out["server_view"] = {**view, "p_value_at_reported_epsilon": p_value(
            view["canaries"], view["guesses"], view["correct"], reported_epsilon, delta) if reported_epsilon else None}
        plan = read_metrics(run_dir / "metrics.jsonl").events_named("federation_dp")
        out["replay"] = replay_audit(cfg, run_dir, index, plan[0] if plan else {})
    return out

"""Membership inference on the real persons: the loss-threshold attack (Yeom et al. 2018). A person
whose windows the released model fits better than others' was more likely trained on. Members: the
NSOs' training persons; non-members: the held-out persons (never trained on) and each NSO's test
persons. Reported: the attack's ROC AUC and its true-positive rate at 1 % false positives, per NSO
and overall: "an attacker who sees the model tells a participant from a non-participant with this
accuracy"."""

from __future__ import annotations

import numpy as np
import torch

from clients.training import loss_fn


@torch.no_grad()
def person_losses(model, x: np.ndarray, y: np.ndarray, wb: np.ndarray, person: np.ndarray,
                  wellbeing_weight: float) -> np.ndarray:
    """Mean loss of each person's windows (index = person)."""
    model.eval()
    loss = np.concatenate([loss_fn(model(torch.from_numpy(x[s:s + 65536])), torch.from_numpy(y[s:s + 65536]),
                                   torch.from_numpy(wb[s:s + 65536]), wellbeing_weight, model.n_classes,
                                   "none").numpy() for s in range(0, len(y), 65536)]) if len(y) else np.zeros(0)
    n = int(person.max() + 1) if len(person) else 0
    return np.bincount(person, weights=loss, minlength=n) / np.maximum(np.bincount(person, minlength=n), 1)


def auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """P[a member scores above a non-member] (ties count half): the Mann-Whitney form of ROC AUC."""
    if not len(member_scores) or not len(nonmember_scores):
        return float("nan")
    both = np.concatenate([member_scores, nonmember_scores])
    ranks = np.empty(len(both))
    order = np.argsort(both, kind="stable")
    ranks[order] = np.arange(1, len(both) + 1)
    for value in np.unique(both):  # average ranks of ties
        tie = both == value
        ranks[tie] = ranks[tie].mean()
    n1, n0 = len(member_scores), len(nonmember_scores)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr: float = 0.01) -> float:
    """True-positive rate at the threshold that flags at most `fpr` of the non-members."""
    if not len(member_scores) or not len(nonmember_scores):
        return float("nan")
    threshold = np.quantile(nonmember_scores, 1 - fpr, method="higher")
    return float((member_scores > threshold).mean())

"""Local training and evaluation over in-memory tensors (no per-sample DataLoader collation)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from datasets.prepared import Arrays

from .model import ActivityNet, ModelConfig


class TrainingConfig(BaseModel):
    """[training]: the NSOs' local optimisation."""

    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(0.002, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    batch_size: int = Field(256, ge=1, le=1_000_000)
    local_epochs: int = Field(1, ge=1, le=1000)
    min_round_steps: int = Field(
        500, ge=0, le=1_000_000,
        description="without DP: the fewest optimizer steps an NSO takes per round; on small data a round makes "
                    "as many passes as that takes (0: exactly local_epochs passes)")


def local_passes(n: int, cfg: TrainingConfig) -> int:
    """Passes over an NSO's n training windows in one round without DP: local_epochs, or as many
    more as min_round_steps needs. An epoch count alone does not scale: on the default data one
    pass is 55-236 steps, on a real table of 28 windows one step, and 10 rounds of one step leave
    the model untrained (issue 24; measured in docs/federated.md)."""
    batches = max(1, math.ceil(n / cfg.batch_size))
    return max(cfg.local_epochs, math.ceil(cfg.min_round_steps / batches))


def local_steps(n: int, cfg: TrainingConfig) -> int:
    """Optimizer steps of one round without DP (`local_passes` x batches per pass)."""
    return local_passes(n, cfg) * math.ceil(n / cfg.batch_size) if n else 0


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on `n` intra-op threads: a node that has the machine to itself (the local engine
    runs NSOs one after another under SecAgg+) uses every core for the per-person updates."""
    saved = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def loss_fn(out: torch.Tensor, y: torch.Tensor, wb: torch.Tensor, wb_weight: float, n_classes: int,
            reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy plus weighted squared error on rated well-being (unrated windows contribute 0)."""
    ce = F.cross_entropy(out[:, :n_classes], y, reduction="none")
    rated = ~torch.isnan(wb)
    se = torch.where(rated, (out[:, n_classes] - torch.nan_to_num(wb)) ** 2, torch.zeros_like(ce))
    per = ce + wb_weight * se
    return per.mean() if reduction == "mean" else per


def make_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)


def train(model: ActivityNet, data: Arrays, cfg: TrainingConfig, mcfg: ModelConfig, seed: int,
          proximal_mu: float = 0.0) -> dict[str, float]:
    """`local_passes` passes over shuffled mini-batches; FedProx adds mu/2 ||w - w_global||^2."""
    n = len(data)
    if n == 0:
        return {"train_loss": float("nan"), "steps": 0}
    gen = torch.Generator().manual_seed(seed)
    x, y, wb = torch.from_numpy(data.x), torch.from_numpy(data.y), torch.from_numpy(data.wellbeing)
    opt = make_optimizer(model, cfg)
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else None
    model.train()
    total, steps = 0.0, 0
    for _ in range(local_passes(n, cfg)):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx], wb[idx], mcfg.wellbeing_weight, model.n_classes)
            if anchor is not None:
                loss = loss + 0.5 * proximal_mu * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
    return {"train_loss": total / max(steps, 1), "steps": steps}


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class F1; a class absent from both truth and prediction scores NaN (left out of macro-F1)."""
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, np.nan)


@torch.no_grad()
def evaluate(model: ActivityNet, data: Arrays, mcfg: ModelConfig, labels: Sequence[str],
             wellbeing_range: Sequence[float] | None, batch: int = 65536) -> dict[str, float]:
    """Loss, accuracy, macro-F1, per-class F1 by label name and well-being MAE on rated windows
    (predictions clipped to the data's well-being scale)."""
    model.eval()
    n = len(data)
    if n == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "macro_f1": float("nan"), "wellbeing_mae": float("nan")}
    x, y, wb = torch.from_numpy(data.x), torch.from_numpy(data.y), torch.from_numpy(data.wellbeing)
    preds, losses, wb_pred = [], [], []
    for s in range(0, n, batch):
        out = model(x[s:s + batch])
        losses.append(loss_fn(out, y[s:s + batch], wb[s:s + batch], mcfg.wellbeing_weight, model.n_classes, "none"))
        preds.append(out[:, :model.n_classes].argmax(1))
        wb_pred.append(out[:, model.n_classes])
    pred = torch.cat(preds).numpy()
    wbp = torch.cat(wb_pred).numpy()
    rated = ~np.isnan(data.wellbeing)
    f1 = f1_scores(data.y, pred, model.n_classes)
    metrics = {
        "loss": float(torch.cat(losses).mean()),
        "accuracy": float((pred == data.y).mean()),
        "macro_f1": float(np.nanmean(f1)),
        "wellbeing_mae": float(np.abs(np.clip(wbp[rated], *wellbeing_range) - data.wellbeing[rated]).mean())
        if rated.any() and wellbeing_range is not None else float("nan"),
    }
    metrics.update({f"f1.{a}": float(v) for a, v in zip(labels, f1)})
    return metrics

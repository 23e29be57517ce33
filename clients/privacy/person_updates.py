"""Per-person model updates for federation-wide DP-FedAvg, all persons of a chunk at once.

Each sampled person's update is computed from that person's windows alone: `local_steps` steps of
gradient descent on the person's mean loss, from the global model (the "user update" of McMahan et
al. 2018, DP-FedAvg), each step over all of the person's windows or, with `local_batch`, over that
many of them drawn afresh without replacement (McMahan et al.'s local mini-batches: a step then
costs local_batch / windows of a full one, and the clip bounds the update whatever it saw). The update (new - global, over the whole model) is clipped to C in
L2 norm and the clipped updates are summed; an update whose local steps diverged (not finite)
counts as zero.

The model is a stack of Linear layers with ReLU between (clients/model.py), so every person can get
a private copy of the weights as one stacked tensor (persons x out x in) and one batched matrix
product runs all of them: a chunk of persons costs about as much as one ordinary mini-batch of the
same windows. Persons are padded to the longest one in the chunk; padded windows carry no weight.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from datasets.prepared import Arrays

from ..model import ActivityNet
from ..training import loss_fn


def _layers(model: ActivityNet) -> list[nn.Linear]:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    others = [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))
              and not isinstance(m, nn.Linear)]
    if others or any(layer.bias is None for layer in layers):
        raise TypeError("per-person updates need a stack of nn.Linear layers with bias and ReLU between them")
    return layers


def _forward(weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ActivityNet's forward pass with one set of weights per person: x is persons x windows x features."""
    h = x
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if i < len(weights) - 1:
            h = torch.relu(h)
    return h


def _padded(data: Arrays, persons: np.ndarray, starts: np.ndarray, counts: np.ndarray):
    """Windows of `persons` as persons x longest x ... tensors, and the mask of real windows."""
    longest = int(counts[persons].max())
    k = len(persons)
    x = torch.zeros((k, longest, data.x.shape[1]))
    y = torch.zeros((k, longest), dtype=torch.int64)
    wb = torch.full((k, longest), float("nan"))
    mask = torch.zeros((k, longest))
    for i, p in enumerate(persons):
        s, n = int(starts[p]), int(counts[p])
        x[i, :n] = torch.from_numpy(data.x[s:s + n])
        y[i, :n] = torch.from_numpy(data.y[s:s + n])
        wb[i, :n] = torch.from_numpy(data.wellbeing[s:s + n])
        mask[i, :n] = 1.0
    return x, y, wb, mask


def _drawn(flat, group: np.ndarray, starts: np.ndarray, counts: np.ndarray, size: int, rng: np.random.Generator):
    """`size` of each person's windows, drawn without replacement (all of them if fewer, the rest
    masked), gathered straight from the NSO's arrays: no padded copy of whole persons."""
    n = counts[group][:, None]
    keys = rng.random((len(group), int(n.max())))
    keys[np.arange(keys.shape[1])[None, :] >= n] = np.inf  # beyond a person's windows: sorts last
    picked = np.argsort(keys, axis=1, kind="stable")[:, :size]
    real = picked < n
    idx = torch.from_numpy(starts[group][:, None] + np.where(real, picked, 0))
    x, y, wb = flat
    return x[idx], y[idx], wb[idx], torch.from_numpy(real.astype(np.float32))


def clipped_update_sum(model: ActivityNet, data: Arrays, persons: np.ndarray, local_steps: int, local_lr: float,
                       clip: float, wellbeing_weight: float, chunk: int = 32, local_batch: int | None = None,
                       rng: np.random.Generator | None = None) -> tuple[list[np.ndarray], dict]:
    """Sum over `persons` (indices into data.person) of their clipped updates, in the order of
    model.state_dict(); and statistics that stay inside the NSO (how many were clipped). With
    `local_batch`, `rng` draws each step's windows (a chunk of 32 persons measured fastest here)."""
    if local_batch is not None and rng is None:
        raise ValueError("local_batch needs the generator that draws each step's windows")
    layers = _layers(model)
    order = np.argsort(data.person, kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        raise ValueError("windows must be grouped by person (datasets/prepared.py writes them so)")
    counts = np.bincount(data.person, minlength=int(data.person.max()) + 1 if len(data) else 0)
    starts = np.cumsum(counts) - counts
    w0 = [layer.weight.detach() for layer in layers]
    b0 = [layer.bias.detach() for layer in layers]
    total_w = [torch.zeros_like(w) for w in w0]
    total_b = [torch.zeros_like(b) for b in b0]
    clipped = diverged = 0
    flat = (torch.from_numpy(data.x), torch.from_numpy(data.y.astype(np.int64)), torch.from_numpy(data.wellbeing))
    for lo in range(0, len(persons), chunk):
        group = persons[lo:lo + chunk]
        full = _padded(data, group, starts, counts) if local_batch is None else None
        k = len(group)
        ws = [w.expand(k, -1, -1).clone().requires_grad_(True) for w in w0]
        bs = [b.expand(k, -1).clone().requires_grad_(True) for b in b0]
        for _ in range(local_steps):
            x, y, wb, mask = full or _drawn(flat, group, starts, counts, local_batch, rng)
            out = _forward(ws, bs, x).reshape(-1, w0[-1].shape[0])
            per = loss_fn(out, y.reshape(-1), wb.reshape(-1), wellbeing_weight, model.n_classes, "none")
            per_person = (per.reshape(k, -1) * mask).sum(1) / mask.sum(1)
            grads = torch.autograd.grad(per_person.sum(), ws + bs)  # person i's loss depends on its copy only
            with torch.no_grad():
                for p, g in zip(ws + bs, grads):
                    p -= local_lr * g
        with torch.no_grad():
            dw = [w - w_ for w, w_ in zip(ws, w0)]
            db = [b - b_ for b, b_ in zip(bs, b0)]
            norm = torch.sqrt(sum((d * d).sum((1, 2)) for d in dw) + sum((d * d).sum(1) for d in db))
            # A person whose local steps diverged contributes nothing: zero is within the clipping bound,
            # and depends on that person's own data only, so the sensitivity stays C.
            finite = torch.isfinite(norm)
            scale = torch.where(finite, (clip / (norm + 1e-12)).clamp(max=1.0), torch.zeros_like(norm))
            dw = [torch.where(finite[:, None, None], d, torch.zeros_like(d)) for d in dw]
            db = [torch.where(finite[:, None], d, torch.zeros_like(d)) for d in db]
            clipped += int((norm > clip).sum())
            diverged += int((~finite).sum())
            for t, d in zip(total_w, dw):
                t += torch.einsum("k,koi->oi", scale, d)
            for t, d in zip(total_b, db):
                t += scale @ d
    by_name = {}
    for layer, tw, tb in zip(layers, total_w, total_b):
        by_name[id(layer.weight)], by_name[id(layer.bias)] = tw, tb
    params = dict(model.named_parameters())
    sums = [by_name[id(params[name])].numpy().astype(np.float64) for name in model.state_dict()]
    return sums, {"persons": len(persons), "clipped": clipped, "diverged": diverged}

"""Per-unit gradient clipping for stacks of nn.Linear layers, without per-sample gradient tensors.

Opacus' default hooks materialise one gradient per sample and layer (batch x out x in floats) and
measured 13-41x the non-private time on a small MLP here; its ghost clipping needs two backward
passes. For a Linear layer the gradient of sample i is the outer product b_i a_i^T of the layer's
output gradient b_i and input a_i, so (Li et al. 2021; Bu et al. 2022, "book-keeping"):

- record unit: ||g_i||^2 = ||a_i||^2 ||b_i||^2 (+ ||b_i||^2 for the bias), and the clipped sum is
  sum_i c_i b_i a_i^T = (c * B)^T A: one matrix product per layer, as in ordinary backprop.
- person unit: a person's gradient is B_P^T A_P over that person's windows; with windows grouped
  per person (zero padded) all persons' gradients come from one batched product of size
  persons x out x in, small because a batch holds few persons. Norms and clipping follow.

The clipped sum goes into `p.summed_grad`; Opacus' DPOptimizer then adds the Gaussian noise,
divides by the expected batch size and steps (see ClippedSumDPOptimizer). tests/test_clipping.py
checks the clipped sums against Opacus' GradSampleModule + DPOptimizer clipping.
"""

from __future__ import annotations

import torch
from opacus.optimizers import DPOptimizer
from torch import nn


class LinearStackClipper:
    """Captures each Linear layer's input and output in the forward pass of `model`."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
        others = [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))
                  and not isinstance(m, nn.Linear)]
        if others:
            raise TypeError(f"only nn.Linear layers carry parameters here; found {[type(m).__name__ for m in others]}")
        self._captured: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]

    def _hook(self, module, inputs, output) -> None:
        self._captured.append((inputs[0].detach(), output))

    def reset(self) -> None:
        self._captured = []

    def close(self) -> None:
        for h in self._handles:
            h.remove()

    def clip_and_sum(self, per_window_loss: torch.Tensor, max_norm: float,
                     unit_of_window: torch.Tensor | None = None) -> dict[str, float]:
        """Set p.summed_grad = sum over units of clipped unit gradients; return norm statistics.

        `unit_of_window` (same length as the loss) groups windows into units (persons); None means
        each window is its own unit.
        """
        captured, self._captured = self._captured, []
        if len(captured) != len(self.layers):
            raise RuntimeError("run exactly one forward pass of the model before clip_and_sum")
        outputs = [z for _, z in captured]
        grads_out = torch.autograd.grad(per_window_loss.sum(), outputs)
        if unit_of_window is None:
            return self._records(captured, grads_out, max_norm)
        return self._units(captured, grads_out, max_norm, unit_of_window)

    def _records(self, captured, grads_out, max_norm: float) -> dict[str, float]:
        norm2 = torch.zeros(grads_out[0].shape[0])
        for layer, (a, _), b in zip(self.layers, captured, grads_out):
            b2 = (b * b).sum(1)
            norm2 += (a * a).sum(1) * b2
            if layer.bias is not None:
                norm2 += b2
        norms = norm2.sqrt()
        clip = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for layer, (a, _), b in zip(self.layers, captured, grads_out):
            cb = b * clip[:, None]
            layer.weight.summed_grad = cb.T @ a
            if layer.bias is not None:
                layer.bias.summed_grad = cb.sum(0)
        return {"units": len(norms), "clipped": int((norms > max_norm).sum())}

    def _units(self, captured, grads_out, max_norm: float, unit_of_window: torch.Tensor) -> dict[str, float]:
        order = torch.argsort(unit_of_window, stable=True)
        units, counts = torch.unique_consecutive(unit_of_window[order], return_counts=True)
        k, longest = len(units), int(counts.max())
        starts = torch.cumsum(counts, 0) - counts
        group = torch.repeat_interleave(torch.arange(k), counts)
        slot = torch.arange(len(order)) - starts[group]

        def padded(t: torch.Tensor) -> torch.Tensor:
            out = torch.zeros((k, longest, t.shape[1]), dtype=t.dtype)
            out[group, slot] = t[order]
            return out

        weight_grads, bias_grads = [], []
        norm2 = torch.zeros(k)
        for layer, (a, _), b in zip(self.layers, captured, grads_out):
            bp = padded(b)
            gw = torch.bmm(bp.transpose(1, 2), padded(a))  # persons x out x in
            weight_grads.append(gw)
            norm2 += (gw * gw).sum((1, 2))
            if layer.bias is not None:
                gb = bp.sum(1)
                bias_grads.append(gb)
                norm2 += (gb * gb).sum(1)
            else:
                bias_grads.append(None)
        norms = norm2.sqrt()
        clip = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for layer, gw, gb in zip(self.layers, weight_grads, bias_grads):
            layer.weight.summed_grad = torch.einsum("k,koi->oi", clip, gw)
            if gb is not None:
                layer.bias.summed_grad = clip @ gb
        return {"units": k, "clipped": int((norms > max_norm).sum())}

    def empty(self) -> None:
        """An empty Poisson batch: zero clipped sum (the optimizer still adds noise)."""
        self._captured = []
        for layer in self.layers:
            for p in layer.parameters():
                p.summed_grad = torch.zeros_like(p)


class ClippedSumDPOptimizer(DPOptimizer):
    """Opacus' DPOptimizer fed with clipped sums already in p.summed_grad (LinearStackClipper):
    Opacus adds N(0, (noise_multiplier * max_grad_norm)^2) noise, divides by the expected batch
    size and steps the wrapped optimizer."""

    @property
    def accumulated_iterations(self) -> int:
        return 1  # one clipped sum per step; no gradient accumulation across backward passes

    def pre_step(self, closure=None):
        if any(getattr(p, "summed_grad", None) is None for p in self.params):
            raise RuntimeError("clip_and_sum (or empty) must run before every step")
        if self._check_skip_next_step():
            self._is_last_step_skipped = True
            return False
        self.add_noise()
        self.scale_grad()
        if self.step_hook:
            self.step_hook(self)
        self._is_last_step_skipped = False
        return True

"""DP-SGD in each NSO: per-unit clipping (clipping.py), Opacus' DPOptimizer for noise and scaling.

Two privacy units:
- record: one sensor window. Each step Poisson-samples windows with rate q, clips each window's
  gradient to max_grad_norm, sums, adds N(0, (sigma * max_grad_norm)^2) per coordinate and divides
  by the expected batch size q * n (Opacus DPOptimizer). Guarantee: (epsilon, delta)-DP with
  respect to adding or removing one window of the NSO's training data.
- person: all windows of one individual. Opacus has no person-level mode; it is built here: each
  step Poisson-samples *persons* with rate q, takes the gradient of each person's summed loss over
  all their windows in the batch, clips it to max_grad_norm, sums over persons, and hands the sum
  to Opacus' DPOptimizer for noise and scaling, so a person's whole contribution is clipped.
  The sensitivity of the summed update to one person is then max_grad_norm, exactly as for one
  record in record-level DP-SGD, and the same subsampled-Gaussian accounting applies with the
  person sampling rate q (the user-level DP-SGD of McMahan et al. 2018). Guarantee:
  (epsilon, delta)-DP with respect to adding or removing one person with all their windows.

Batches are sampled with Poisson sampling (each unit independently with probability q), as the
accountants assume; an empty batch still takes a noisy step. Data stay in memory tensors.
"""

from __future__ import annotations

import torch

from datasets.prepared import Arrays

from ..model import ActivityNet, ModelConfig
from ..training import TrainingConfig, loss_fn, make_optimizer
from .clipping import ClippedSumDPOptimizer, LinearStackClipper
from .sampling import poisson_batch, units


def dp_train(model: ActivityNet, data: Arrays, tcfg: TrainingConfig, mcfg: ModelConfig, unit: str, sigma: float,
             max_grad_norm: float, q: float, steps: int, seeds: tuple[int, int]) -> dict[str, float]:
    """`steps` DP-SGD steps with Poisson sampling of `unit`s at rate q; `seeds` = (sampling, noise),
    from the node's Randomness (clients/privacy/randomness.py), so no other party knows them.

    Clipping per unit (clients/clipping.py), then Opacus' DPOptimizer: Gaussian noise with standard
    deviation sigma * max_grad_norm, division by the expected batch size q * n_units, optimizer step.
    """
    gen = torch.Generator().manual_seed(seeds[0])
    noise_gen = torch.Generator().manual_seed(seeds[1])
    n_units = units(data, unit)
    clipper = LinearStackClipper(model)
    opt = ClippedSumDPOptimizer(make_optimizer(model, tcfg), noise_multiplier=sigma, max_grad_norm=max_grad_norm,
                                expected_batch_size=q * n_units, loss_reduction="mean", generator=noise_gen)
    x, y, wb = torch.from_numpy(data.x), torch.from_numpy(data.y), torch.from_numpy(data.wellbeing)
    person = torch.from_numpy(data.person)
    model.train()
    total, batch_units, clipped = 0.0, 0, 0
    try:
        for _ in range(steps):
            _, idx = poisson_batch(n_units, q, gen, person if unit == "person" else None)
            opt.zero_grad(set_to_none=True)
            if len(idx) == 0:
                clipper.empty()  # an empty Poisson batch: no gradient, but noise all the same
            else:
                clipper.reset()
                per_window = loss_fn(model(x[idx]), y[idx], wb[idx], mcfg.wellbeing_weight, model.n_classes, "none")
                stats = clipper.clip_and_sum(per_window, max_grad_norm, person[idx] if unit == "person" else None)
                total += float(per_window.detach().mean())
                batch_units += stats["units"]
                clipped += stats["clipped"]
            opt.step()
    finally:
        clipper.close()
    return {"train_loss": total / max(steps, 1), "steps": steps, "mean_batch_units": batch_units / max(steps, 1),
            "clipped_share": clipped / max(batch_units, 1)}

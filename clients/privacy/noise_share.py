"""An NSO's share of the federation's noise, on the secure-aggregation grid.

In the federation scope (DP-FedAvg with distributed noise) each NSO adds Gaussian noise with
standard deviation sigma * C_eff / sqrt(k_min) to the sum of its clipped person updates; SecAgg+
reveals only the total, which holds the noise of at least k_min NSOs (its reconstruction threshold),
so at least sigma * C_eff in all: the central mechanism that the server's accountant composes.

SecAgg+ quantizes every value with stochastic rounding to a grid of step 2c/Q (c its clipping range,
Q its quantization range) after clipping it to +-c. Rounding after the noise would make the released
sum depend on each NSO's rounding of its own noisy value, and clipping would remove noise, both
outside the analysis. So the NSO does it itself, in an order that the analysis covers:
1. its clipped sum is stochastically rounded to the grid (floor(x/step + u) * step, u uniform). For
   a fixed u this moves two neighbouring sums apart by at most step per coordinate, so the rounded
   sum has L2 sensitivity at most C_eff = C + step * sqrt(d); a mixture over u of mechanisms that
   are each (epsilon, delta)-DP (or RDP) is too. The accountant uses sigma relative to C_eff.
2. the noise is drawn on the grid: a Gaussian rounded to the nearest grid point (a discretised
   Gaussian; with sigma/step about 10^4 here its divergence from the continuous one is far below
   any printed digit, but it is not separately accounted: docs/privacy.md).
3. a value outside +-c would be clipped by SecAgg+: the NSO refuses to send (GridOverflow) and the
   round fails loudly instead of carrying less noise than accounted.
The grid step is a power of two when c is (the server makes it so), so grid values are exact in
float64 and SecAgg+'s quantizer maps them to integers without rounding.
"""

from __future__ import annotations

import math

import numpy as np


class GridOverflow(RuntimeError):
    """A noisy value lies outside SecAgg+'s clipping range: sending it would remove noise."""


def grid_step(clipping_range: float, quantization_range: int) -> float:
    return 2.0 * clipping_range / quantization_range


def effective_clip(clip: float, step: float, dims: int) -> float:
    """L2 sensitivity of the grid-rounded clipped sum to one person."""
    return clip + step * math.sqrt(dims)


def noisy_share(sums: list[np.ndarray], noise_std: float, step: float, clipping_range: float,
                rng: np.random.Generator) -> list[np.ndarray]:
    """Rounded sum plus grid noise, checked against the clipping range."""
    out = []
    for s in sums:
        rounded = np.floor(s / step + rng.random(s.shape)) * step
        noise = np.round(rng.normal(0.0, noise_std, s.shape) / step) * step
        v = rounded + noise
        if not np.isfinite(v).all():
            raise GridOverflow("the noisy sum holds non-finite values (the global model diverged?); SecAgg+ would "
                               "quantize them to garbage, so nothing is sent")
        over = np.abs(v) > clipping_range
        if over.any():
            raise GridOverflow(f"{int(over.sum())} noisy value(s) lie outside +-{clipping_range:g} (largest "
                               f"{float(np.abs(v).max()):.4g}); SecAgg+ would clip them and the aggregate would "
                               "carry less noise than accounted. Raise secure_aggregation.clipping_range")
        out.append(v)
    return out

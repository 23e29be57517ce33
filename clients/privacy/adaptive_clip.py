"""Adaptive clipping for the federation scope (Andrew et al. 2021, "Differentially private learning
with adaptive clipping"): the clip follows a quantile of the persons' update norms, learnt from a
noisy count that rides in the same secure aggregate as the updates.

Round t clips each sampled person's update at C_t = C * scale_t, where C is privacy.max_grad_norm and
scale_t comes from the server. What an NSO sends is kept in the units of C: the clipped sum divided
by scale_t, plus one coordinate count_scale * sum(b_i - 1/2), b_i = 1 if person i was not clipped.
One person moves that vector by at most hypot(C, count_scale / 2) whatever scale_t is, so the plan's
noise (federation_plan.py, accounted for that sensitivity) covers both the update and the count:
one Gaussian mechanism, Andrew et al.'s z = (z_update^-2 + (2 sigma_b)^-2)^-1/2 read the other way.
The server multiplies the update back by scale_t and steps the scale geometrically,
scale_{t+1} = scale_t * exp(-clip_lr * (unclipped fraction - quantile)). Any scale the server sends
keeps the guarantee: an NSO only needs it positive and finite.
"""

from __future__ import annotations

import math

import numpy as np


def sent_vectors(sums: list[np.ndarray], persons: int, clipped: int, clip_scale: float,
                 count_scale: float) -> list[np.ndarray]:
    """What an NSO puts on the grid: its clipped sum in units of C, and with count_scale > 0 the count
    coordinate (an array of one value after the model's arrays)."""
    out = [s / clip_scale for s in sums]
    if count_scale > 0:
        out.append(np.array([count_scale * (persons / 2 - clipped)]))
    return out


def split_count(total: list[np.ndarray], count_scale: float) -> tuple[list[np.ndarray], float | None]:
    """The model's arrays of an aggregated sum, and its noisy sum of (b_i - 1/2) if it carries one."""
    if count_scale <= 0:
        return total, None
    return total[:-1], float(total[-1][0]) / count_scale


def next_clip_scale(scale: float, noisy_centred_count: float, expected_persons: float, quantile: float,
                    lr: float) -> tuple[float, float]:
    """Andrew et al.'s geometric update, and the noisy fraction of unclipped persons it used."""
    unclipped = noisy_centred_count / expected_persons + 0.5
    return scale * math.exp(-lr * (unclipped - quantile)), unclipped


def checked_scale(value: object) -> float:
    """The server's clip scale as an NSO accepts it; ValueError otherwise (any positive finite scale
    keeps the guarantee, so nothing else needs checking)."""
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the server's clip scale {value!r} is not a number") from None
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"the server's clip scale {scale!r} must be positive and finite")
    return scale

"""The vectors the NSOs send for pooled figures, laid out alike on both sides.

Under SecAgg+ the coordinator learns only the sum over NSOs of each vector. Every block is divided
by a public bound (from the sizes the data index discloses anyway), so that each value lies within
[0, 1] before noise and fits SecAgg+'s clipping range; a value outside +-CLIP makes the NSO refuse to
send (SecAgg+ would clip it silently, and the pooled figure would be wrong without saying so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLIP = 4.0  # SecAgg+ clipping range of the pooling exchange


class PoolingOverflow(ValueError):
    """A value is too large for the pooling exchange's clipping range."""


@dataclass(frozen=True)
class Layout:
    """Named blocks: shape and public scale of each, in a fixed order."""

    blocks: tuple[tuple[str, tuple[int, ...], float], ...]

    @property
    def size(self) -> int:
        return int(sum(np.prod(shape) for _, shape, _ in self.blocks))

    def pack(self, values: dict[str, np.ndarray]) -> np.ndarray:
        parts = [np.asarray(values[name], dtype=np.float64).reshape(shape) / scale for name, shape, scale in self.blocks]
        for (name, _, _), p in zip(self.blocks, parts):
            if not np.isfinite(p).all() or np.abs(p).max(initial=0.0) > CLIP:
                raise PoolingOverflow(f"a pooled value of block {name!r} lies outside +-{CLIP:g} of its public bound; "
                                      "SecAgg+ would clip it, so it is not sent")
        return np.concatenate([p.ravel() for p in parts]) if parts else np.zeros(0)

    def unpack(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        out, start = {}, 0
        for name, shape, scale in self.blocks:
            n = int(np.prod(shape))
            out[name] = flat[start:start + n].reshape(shape) * scale
            start += n
        return out


def confusion_layout(cells: int, k: int, max_labelled_windows: int) -> Layout:
    return Layout((("confusion", (cells, k, k), float(max(max_labelled_windows, 1))),))


def estimates_layout(cells: int, k: int, max_person_days: int, max_diary_days: int, day_minutes: float,
                     max_windows: int, wellbeing_bound: float, dp_ppi_noise_std: float | None = None) -> Layout:
    """With `dp_ppi_noise_std` (the largest noise standard deviation on one NSO's released sums):
    also the released sums of the DP release of PPI++ (ppi_release.pooling), so that pooled rows
    are estimated from pooled sums; the sums' bound leaves room for their noise."""
    n, d = float(max(max_person_days, 1)), float(max(max_diary_days, 1))
    blocks = (
        ("n_est", (cells, k), n * day_minutes), ("n_cc", (cells, k), n * day_minutes), ("n", (cells,), n),
        ("n2var", (cells, k), (n * day_minutes) ** 2), ("diary", (cells, k), d * day_minutes), ("diary_n", (cells,), d),
        ("wb", (k,), float(max(max_windows, 1)) * max(wellbeing_bound, 1.0)), ("wb_n", (k,), float(max(max_windows, 1))),
    )
    if dp_ppi_noise_std is not None:
        room = 2.0 * dp_ppi_noise_std  # |noise| < 4 x (bound + 2 sd): beyond 8 sd, with probability < 1e-15
        blocks += (
            ("ppi_sensor", (cells, k), n * day_minutes + room), ("ppi_labelled_diary", (cells, k), d * day_minutes + room),
            ("ppi_labelled_predicted", (cells, k), d * day_minutes + room), ("ppi_trained", (cells, k), d * day_minutes + room),
            ("ppi_nsos", (1,), 1.0),
        )
    return Layout(blocks)

"""Publishing only the pooled rows (inference.publish = "pooled"): distributed noise under SecAgg+.

When NSOs publish their national tables, the pooled rows are computed from them and carry every
NSO's noise: K NSOs put K times the noise variance a single release needs on a pooled sum. When
only the pooled rows are published, each NSO adds 1/h of that variance to its exact sums instead
(h = `inference.honest_nsos`, default all K) and sends them through SecAgg+; the coordinator learns
only the sum, which carries the whole mechanism's noise as long as at least h NSOs' shares are in
it - the federation scope of training does the same (clients/privacy/noise_share.py). The
guarantee holds against the coordinator and every outsider; against the coordinator together
with NSOs that reveal their own shares it holds while at least h honest shares remain. No national
table is published: each NSO's share alone carries too little noise.

SecAgg+ rounds every value to a grid. Rounding a noisy value would make the released sum depend on
each NSO's own noise, outside the analysis; so each NSO rounds its exact sums to the grid itself
(stochastic rounding, which moves one person's contribution by at most one grid step per value)
and draws its noise on the grid (noise_share.noisy_share), and the sensitivity the noise is
calibrated to includes the rounding: S + step x sqrt(values) in each block's units. A value
outside SecAgg+'s clipping range refuses to leave (GridOverflow) rather than being clipped.

The blocks and their mechanisms (one per group of persons, as in ppi_release.py): sensor-only
persons - predicted minutes (`ppi_sensor`) and centred well-being sums (`wb`), with
`inference.wellbeing_share` between them; held-out labelled persons - diary and predicted minutes;
trained persons - diary minutes.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from datasets.errors import UserError

from ..privacy.noise_share import noisy_share
from .pooling import CLIP, Layout
from .release import Mechanism

if TYPE_CHECKING:
    from .national import Setting

# pooled block -> (group of persons, block of that group's mechanism)
BLOCKS = {"ppi_sensor": ("sensor", "minutes"), "wb": ("sensor", "wellbeing"),
          "ppi_labelled_diary": ("labelled", "diary"), "ppi_labelled_predicted": ("labelled", "predicted"),
          "ppi_trained": ("trained", "diary")}
NOISY_SUMS = {"ppi_sensor": "sensor_predicted", "ppi_labelled_diary": "labelled_diary",
              "ppi_labelled_predicted": "labelled_predicted", "ppi_trained": "trained_diary"}


def checked_honest(honest: int | None, nsos: int) -> int:
    """h: `inference.honest_nsos`, default all `nsos`; UserError if there are not that many NSOs."""
    h = honest or nsos
    if h > nsos:
        raise UserError(f"inference.honest_nsos = {h} but the federation has {nsos} NSOs; allowed: 1..{nsos}, "
                        "or leave it out for all")
    return h


def honest_nsos(st: "Setting") -> int:
    """h: the NSOs whose shares the guarantee counts on (`checked_honest`)."""
    return checked_honest(st.cfg.honest_nsos, st.nsos)


def mechanisms(st: "Setting", layout: Layout) -> dict[str, Mechanism]:
    """Each group's mechanism for one NSO's share: the national sensitivities plus the grid's
    rounding (one step per value, in the block's units), and 1/h of the noise variance."""
    sensor, _ = st.mechanisms()
    labelled, trained = st.ppi_mechanisms()
    mechs = {"sensor": sensor, "labelled": labelled, "trained": trained}
    scale = {name: (s, int(np.prod(shape))) for name, shape, s in layout.blocks}
    fraction = 1.0 / honest_nsos(st)
    out = {}
    for group, mech in mechs.items():
        sens = dict(mech.sensitivity)
        for block, (g, key) in BLOCKS.items():
            if g == group and key in sens:
                s, size = scale[block]
                sens[key] += st.grid_step * s * math.sqrt(size)
        out[group] = replace(mech, sensitivity=sens, fraction=fraction)
    return out


def share_std(st: "Setting", layout: Layout) -> dict[str, float]:
    """One NSO's noise standard deviation on each pooled block (original units), with the grid's
    rounding variance (at most step^2 / 4 per value) added."""
    mechs = mechanisms(st, layout)
    scale = {name: s for name, _, s in layout.blocks}
    out = {}
    for block, (group, key) in BLOCKS.items():
        if key in mechs[group].sensitivity:
            std = mechs[group].noise_std[key]
            out[block] = math.sqrt(std ** 2 + (st.grid_step * scale[block]) ** 2 / 4)
    return out


def pack_share(st: "Setting", layout: Layout, exact: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """This NSO's pooling vector: every noisy block rounded to the grid from its exact sums with its
    share of the noise drawn on the grid; the other blocks (exact quality comparisons, the count
    of NSOs) as `Layout.pack` packs them."""
    if not st.grid_step > 0:
        raise ValueError("publishing pooled rows needs the SecAgg+ grid step; the coordinator sets it")
    mechs = mechanisms(st, layout)
    if min(m.z for m in mechs.values()) <= 0:
        raise ValueError("publishing pooled rows with noise shares needs a DP release (inference.epsilon)")
    parts = []
    for name, shape, s in layout.blocks:
        value = np.asarray(exact[name], dtype=np.float64).reshape(shape) / s
        if name in BLOCKS and BLOCKS[name][1] in mechs[BLOCKS[name][0]].sensitivity:
            group, key = BLOCKS[name]
            value = noisy_share([value], mechs[group].noise_std[key] / s, st.grid_step, CLIP, rng)[0]
        elif name in BLOCKS and np.any(value != 0):  # e.g. well-being sums from data without a rating scale
            raise ValueError(f"pooled block {name!r} has no accounted sensitivity")
        elif np.abs(value).max(initial=0.0) > CLIP:
            raise ValueError(f"pooled block {name!r} lies outside +-{CLIP:g} of its public bound")
        parts.append(value.ravel())
    return np.concatenate(parts)


def check_shares(total: dict[str, np.ndarray], st: "Setting") -> None:
    """The coordinator's check before it estimates: the sum must hold at least h shares, or it would
    carry less noise than accounted."""
    got, h = int(round(float(total["ppi_nsos"][0]))), honest_nsos(st)
    if got < h:
        raise RuntimeError(f"the pooled sums hold {got} NSOs' noise shares, fewer than the {h} the guarantee counts "
                           "on: they carry less noise than accounted and are not published")

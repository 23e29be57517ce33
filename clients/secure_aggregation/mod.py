"""Client side of secure aggregation: the method the run asks for (Flower's secaggplus_mod, or
CKKS aggregation in ckks_mod.py), and the simulated dropouts of the config (an NSO that stops
answering at a given stage and round). A new method is one module and one line in METHODS.

A dropped NSO raises, which every engine turns into an error reply: to the SecAgg+ workflow that
node is gone from then on, exactly as a node that lost its connection.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Context, Message
from flwr.client.mod import secaggplus_mod
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from ..run_config import section
from . import ckks_mod
from .ckks import CkksError
from .config import SecureAggregationConfig

METHODS = {"secaggplus": secaggplus_mod, "ckks": ckks_mod.handle}


def _stage(msg: Message, method: str) -> str | None:
    if method == "ckks":
        return ckks_mod.stage_of(msg)
    records = msg.content.config_records
    return records[RECORD_KEY_CONFIGS][Key.STAGE] if RECORD_KEY_CONFIGS in records else None


class SimulatedDropout(RuntimeError):
    """This NSO drops out here, as configured (secure_aggregation.dropouts)."""


def _config(context: Context, overrides: dict) -> SecureAggregationConfig:
    return section({**context.run_config, **overrides}, "secure_aggregation", SecureAggregationConfig)


def make_mods(overrides: dict):
    """Mods for the ClientApp; `overrides` is the run config the engine imposes (may be empty)."""

    def secure_aggregation_mod(msg: Message, ctxt: Context, call_next):
        cfg = _config(ctxt, overrides)
        if not cfg.enabled or msg.metadata.message_type != "train":
            return call_next(msg, ctxt)
        stage = _stage(msg, cfg.method)
        if cfg.method == "ckks" and stage is None:
            raise CkksError("a training message without a CKKS stage: under secure_aggregation.method = 'ckks' "
                            "this NSO sends no update in the clear")
        nso = str(ctxt.node_config.get("nso", ""))
        for d in cfg.dropouts:
            if d.nso == nso and d.stage == stage and str(d.round) == msg.metadata.group_id:
                raise SimulatedDropout(f"NSO {nso} dropped out at stage {stage} of round {d.round} (configured)")
        return METHODS[cfg.method](msg, ctxt, call_next)

    return [secure_aggregation_mod]


def clipped_count(delta: list[np.ndarray], num_examples: int, max_weight: float, clipping_range: float) -> int:
    """Values the SecAgg+ quantizer will clip: it clips (num_examples / max_weight) * delta."""
    ratio = num_examples / max_weight
    return int(sum(int((np.abs(d * ratio) > clipping_range).sum()) for d in delta))

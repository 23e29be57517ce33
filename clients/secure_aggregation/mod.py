"""Client side of secure aggregation: Flower's secaggplus_mod when the run asks for it, and the
simulated dropouts of the config (an NSO that stops answering at a given stage and round).

A dropped NSO raises, which every engine turns into an error reply: to the SecAgg+ workflow that
node is gone from then on, exactly as a node that lost its connection.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Context, Message
from flwr.client.mod import secaggplus_mod
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from ..run_config import section
from .config import SecureAggregationConfig


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
        stage = msg.content.config_records[RECORD_KEY_CONFIGS][Key.STAGE] \
            if RECORD_KEY_CONFIGS in msg.content.config_records else None
        nso = str(ctxt.node_config.get("nso", ""))
        for d in cfg.dropouts:
            if d.nso == nso and d.stage == stage and str(d.round) == msg.metadata.group_id:
                raise SimulatedDropout(f"NSO {nso} dropped out at stage {stage} of round {d.round} (configured)")
        return secaggplus_mod(msg, ctxt, call_next)

    return [secure_aggregation_mod]


def clipped_count(delta: list[np.ndarray], num_examples: int, max_weight: float, clipping_range: float) -> int:
    """Values the SecAgg+ quantizer will clip: it clips (num_examples / max_weight) * delta."""
    ratio = num_examples / max_weight
    return int(sum(int((np.abs(d * ratio) > clipping_range).sum()) for d in delta))

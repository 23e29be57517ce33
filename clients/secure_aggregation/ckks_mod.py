"""The NSO's side of CKKS aggregation (secure_aggregation.method = "ckks"): a ClientApp mod.

The NSO quantizes its weighted update exactly as Flower's secaggplus_mod does (the same weight
ratio, clipping range, stochastic rounding and factor), so that both methods sum the same
integers; it then encrypts the integers under the run's CKKS key instead of masking them. The
server adds the ciphertexts; one NSO decrypts the sum and rounds it back to integers. Rounding is
exact while CKKS's error stays below one half (ckks.error_bound, checked before the sum is sent
back), so the aggregate carries SecAgg+'s quantization error and nothing from CKKS, and runs stay
bit-identical although SEAL's encryption randomness is not seeded.

Stages, all in "train" messages with a ConfigRecord RECORD whose "stage" names them:
keys (each NSO: a fresh X25519 key, its public half back), keygen (the key holder: the CKKS key
pair, the public context and the secret context sealed to every other NSO), install (each other
NSO: open and keep the secret context), fit (train, quantize, encrypt), decrypt (the sum back to
integers). Keys live in the node's context.state for the run.
"""

from __future__ import annotations

import json
from typing import cast

import flwr.compat.common.recorddict_compat as compat
import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.common import bytes_to_ndarray, ndarray_to_bytes, parameters_to_ndarrays
from flwr.common.secure_aggregation.ndarrays_arithmetic import factor_combine, parameters_multiply
from flwr.common.secure_aggregation.quantization import quantize

from . import ckks

RECORD = "ppml.ckks"  # the protocol's ConfigRecord in every message
STATE = "ppml.ckks.state"  # the node's keys, in context.state
STAGES = ("keys", "keygen", "install", "fit", "decrypt")


def stage_of(msg: Message) -> str | None:
    """The CKKS stage a message asks for (None: not a CKKS message)."""
    rec = msg.content.config_records.get(RECORD)
    return None if rec is None else str(rec["stage"])


def handle(msg: Message, ctxt: Context, call_next) -> Message:
    """Answer one CKKS stage; errors raise, which every engine turns into an error reply."""
    cfg = msg.content.config_records[RECORD]
    stage = str(cfg["stage"])
    if ctxt.state.config_records.get(STATE) is None:
        ctxt.state.config_records[STATE] = ConfigRecord({})
    state = ctxt.state.config_records[STATE]
    out = RecordDict()
    if stage == "keys":
        key = ckks.new_box_key()
        state["box_key"] = bytes(key)
        state.pop("context", None)
        res = {"public_key": bytes(key.public_key)}
    elif stage == "keygen":
        res = _keygen(state, cfg)
    elif stage == "install":
        secret = ckks.unseal(cast(bytes, cfg["sealed"]), _need(state, "box_key"))
        ckks.load_context(secret, secret=True)
        state["context"] = secret
        res = {"installed": True}
    elif stage == "fit":
        out, res = _fit(msg, ctxt, call_next, state, cfg)
    elif stage == "decrypt":
        res = _decrypt(state, cfg)
    else:
        raise ckks.CkksError(f"unknown CKKS stage {stage!r}; allowed: {', '.join(STAGES)}")
    out.config_records[RECORD] = ConfigRecord(res, False)
    return Message(out, reply_to=msg)


def _need(state: ConfigRecord, key: str) -> bytes:
    if key not in state:
        raise ckks.CkksError(f"this NSO holds no CKKS {key.replace('_', ' ')} (its node restarted since the key "
                             "set-up?); the round cannot be aggregated")
    return cast(bytes, state[key])


def _keygen(state: ConfigRecord, cfg: ConfigRecord) -> dict:
    ctx = ckks.new_context(int(cfg["scale_bits"]))
    secret = ckks.serialize(ctx, secret=True)
    state["context"] = secret
    keys = cast(list[bytes], cfg["public_keys"])
    return {"public_context": ckks.serialize(ctx, secret=False),
            "sealed": [ckks.seal(secret, k) for k in keys]}


def _fit(msg: Message, ctxt: Context, call_next, state: ConfigRecord, cfg: ConfigRecord) -> tuple[RecordDict, dict]:
    ctx = ckks.load_context(_need(state, "context"), secret=True)
    out = call_next(msg, ctxt).content
    fitres = compat.recorddict_to_fitres(out, keep_input=True)
    max_weight, clip, q_range = float(cfg["max_weight"]), float(cfg["clipping_range"]), int(cfg["quantization_range"])
    ratio = fitres.num_examples / max_weight
    if ratio > 1:
        raise ckks.CkksError(f"num_examples {fitres.num_examples} exceeds max_weight {max_weight:g}: the "
                             "quantized sum could overflow")
    q_ratio = round(ratio * q_range)
    arrays = quantize(parameters_multiply(parameters_to_ndarrays(fitres.parameters), q_ratio / q_range), clip, q_range)
    flat = np.concatenate([a.ravel() for a in factor_combine(q_ratio, arrays)]).astype(np.float64)
    for rec in out.array_records.values():
        rec.clear()
    return out, {"ciphertexts": ckks.encrypt(ctx, flat), "size": int(flat.size),
                 "shapes": json.dumps([list(a.shape) for a in arrays])}


def _decrypt(state: ConfigRecord, cfg: ConfigRecord) -> dict:
    ctx = ckks.load_context(_need(state, "context"), secret=True)
    values = ckks.decrypt(ctx, cast(list[bytes], cfg["ciphertexts"]), int(cfg["size"]))
    ints = np.rint(values)
    bound = ckks.error_bound(int(cfg["summands"]), int(cfg["scale_bits"]))
    worst = float(np.abs(values - ints).max()) if values.size else 0.0
    if bound >= 0.5 or worst > bound:
        raise ckks.CkksError(f"the decrypted sum is off its integers by up to {worst:.3g} (bound {bound:.3g}): "
                             "the CKKS error would enter the model, so the sum is not returned")
    return {"sum": ndarray_to_bytes(ints.astype(np.int64)), "residual": worst, "bound": bound}


def read_sum(res: ConfigRecord) -> np.ndarray:
    """The integer sum a decrypt reply carries."""
    return bytes_to_ndarray(cast(bytes, res["sum"]))

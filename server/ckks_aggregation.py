"""The server's side of CKKS aggregation (secure_aggregation.method = "ckks"), a fit workflow.

Per run, before the first round (and again if the sampled NSOs change): every NSO sends an X25519
public key, the key holder (the NSO with the lowest node id) makes the CKKS key pair and seals the
secret context to the others, and they install it; the server keeps only the public context.
Per round: the NSOs train and send quantized, encrypted updates (clients/secure_aggregation/
ckks_mod.py); the server adds the ciphertexts and asks one NSO to decrypt the sum (the next one if
it does not answer). The round fails loudly unless the sum was decrypted; the strategy then sees
the same average SecAgg+ would give it, with the same quantization error.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import flwr.compat.common.recorddict_compat as compat
import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.common import ndarrays_to_parameters
from flwr.common.secure_aggregation.ndarrays_arithmetic import factor_extract
from flwr.common.secure_aggregation.quantization import dequantize
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD

from clients.secure_aggregation import ckks, ckks_mod

from .strategy import RoundFailed, failure_reason


class CkksWorkflow:
    """A fit workflow for Flower's DefaultWorkflow, as SecAggPlusWorkflow is; `on_round(info)` gets
    what happened in each round, in the same shape as the checked SecAgg+ workflow's."""

    def __init__(self, max_weight: float, clipping_range: float, quantization_range: int, scale_bits: int,
                 timeout: float | None, train_timeout: float | None = None, on_round: Any = None) -> None:
        self.max_weight, self.clipping_range, self.q_range = max_weight, clipping_range, quantization_range
        self.scale_bits, self.timeout, self.train_timeout = scale_bits, timeout, train_timeout or timeout
        self.on_round = on_round
        self._public: Any = None  # the run's public CKKS context, once the keys are set up
        self._keyed: set[int] = set()

    def __call__(self, grid, context: LegacyContext) -> None:
        current_round = int(context.state.config_records[MAIN_CONFIGS_RECORD]["current_round"])
        info: dict[str, Any] = {"round": current_round, "completed": False, "stage": "setup", "num_shares": None,
                                "threshold": None, "sampled": 0, "active": 0, "failures": [], "stage_s": {},
                                "bytes_up": 0, "bytes_down": 0, "errors": []}
        try:
            self._round(grid, context, current_round, info)
        finally:
            if self.on_round:
                self.on_round(info)
        if not info["completed"]:
            raise RoundFailed(f"round {current_round}: CKKS aggregation stopped at stage '{info['stage']}' with "
                              f"{info['active']} of {info['sampled']} NSOs active; the model was not updated. "
                              f"Reasons: {'; '.join(info['failures']) or 'none reported'}")

    def _round(self, grid, context: LegacyContext, current_round: int, info: dict) -> None:
        parameters = compat.arrayrecord_to_parameters(context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True)
        sampled = context.strategy.configure_fit(current_round, parameters, context.client_manager)
        if not sampled:
            info["failures"].append("configure_fit selected no NSO")
            return
        nodes = sorted(proxy.node_id for proxy, _ in sampled)
        info["sampled"] = info["active"] = len(nodes)
        if self._public is None or not set(nodes) <= self._keyed:
            if not self._timed(info, "keys", self._set_up_keys, grid, nodes, current_round, info):
                return
        ok = self._timed(info, "fit", self._collect, grid, sampled, current_round, info)
        if ok:
            summed, results, layout = ok
            self._timed(info, "decrypt", self._decrypt_and_aggregate, grid, context, summed, results, layout,
                        current_round, info)

    @staticmethod
    def _timed(info: dict, stage: str, fn, *args):
        info["stage"] = stage
        start = time.perf_counter()
        out = fn(*args)
        info["stage_s"][stage] = time.perf_counter() - start
        return out

    def _exchange(self, grid, payloads: dict[int, dict], current_round: int, info: dict, timeout: float | None,
                  fitins: dict | None = None) -> dict[int, ConfigRecord]:
        """Send each node its stage record (with its FitIns in the fit stage); the good replies by node."""
        def make(nid: int) -> Message:
            content = fitins[nid] if fitins else RecordDict()
            content.config_records[ckks_mod.RECORD] = ConfigRecord(payloads[nid], False)
            info["bytes_down"] += payload_bytes(payloads[nid])
            return Message(content=content, dst_node_id=nid, message_type=MessageType.TRAIN, group_id=str(current_round))

        replies = grid.send_and_receive([make(n) for n in payloads], timeout=timeout)
        good: dict[int, Any] = {}
        for msg in replies:
            if msg.has_error():
                info["errors"].append(Exception(msg.error))
                info["failures"].append(failure_reason(info["errors"][-1]))
            elif ckks_mod.RECORD not in msg.content.config_records:
                info["failures"].append(f"node {msg.metadata.src_node_id} answered without a CKKS record")
            else:
                info["bytes_up"] += payload_bytes(dict(msg.content.config_records[ckks_mod.RECORD]))
                good[msg.metadata.src_node_id] = msg
        missing = set(payloads) - set(good)
        if missing and len(info["failures"]) < len(missing):
            info["failures"].append(f"{len(missing)} NSO(s) did not answer the '{info['stage']}' stage in time")
        info["active"] = len(good)
        return good

    def _set_up_keys(self, grid, nodes: list[int], current_round: int, info: dict) -> bool:
        """The run's keys (module docstring); every sampled NSO must take part."""
        replies = self._exchange(grid, {n: {"stage": "keys"} for n in nodes}, current_round, info, self.timeout)
        if len(replies) < len(nodes):
            return False
        holder, others = nodes[0], nodes[1:]
        keys = [cast(bytes, replies[n].content.config_records[ckks_mod.RECORD]["public_key"]) for n in others]
        got = self._exchange(grid, {holder: {"stage": "keygen", "scale_bits": self.scale_bits, "public_keys": keys}},
                             current_round, info, self.timeout)
        if holder not in got:
            return False
        res = got[holder].content.config_records[ckks_mod.RECORD]
        sealed = cast(list[bytes], res["sealed"])
        if len(sealed) != len(others):
            info["failures"].append(f"the key holder sealed {len(sealed)} keys for {len(others)} NSOs")
            return False
        self._public = ckks.load_context(cast(bytes, res["public_context"]), secret=False)
        installed = self._exchange(grid, {n: {"stage": "install", "sealed": s} for n, s in zip(others, sealed)},
                                   current_round, info, self.timeout) if others else {}
        if len(installed) < len(others):
            self._public = None
            return False
        self._keyed = set(nodes)
        return True

    def _collect(self, grid, sampled: list, current_round: int, info: dict):
        """Train and collect ciphertexts; their sum, the legacy results and the layout (length, shapes)."""
        fitins = {proxy.node_id: compat.fitins_to_recorddict(ins, True) for proxy, ins in sampled}
        proxies = {proxy.node_id: proxy for proxy, _ in sampled}
        spec = {"stage": "fit", "max_weight": self.max_weight, "clipping_range": self.clipping_range,
                "quantization_range": self.q_range}
        replies = self._exchange(grid, {n: dict(spec) for n in fitins}, current_round, info, self.train_timeout, fitins)
        info["fit_errors"] = list(info["errors"])  # the strategy reports these NSOs as dropped
        if not replies:
            return None
        records = [replies[n].content.config_records[ckks_mod.RECORD] for n in sorted(replies)]
        layouts = {(int(r["size"]), str(r["shapes"])) for r in records}
        if len(layouts) != 1:
            info["failures"].append(f"the NSOs encrypted vectors of different layouts: {sorted(layouts)}")
            return None
        try:
            summed = ckks.add(self._public, [cast(list[bytes], r["ciphertexts"]) for r in records])
        except ckks.CkksError as exc:
            info["failures"].append(str(exc))
            return None
        results = [(proxies[n], compat.recorddict_to_fitres(replies[n].content, True)) for n in sorted(replies)]
        size, shapes = layouts.pop()
        return summed, results, (size, [tuple(s) for s in json.loads(shapes)])

    def _decrypt_and_aggregate(self, grid, context: LegacyContext, summed: list[bytes], results: list,
                               layout: tuple[int, list[tuple[int, ...]]], current_round: int, info: dict) -> None:
        """One NSO decrypts (the next one if it fails); the average goes to the strategy as SecAgg+'s does."""
        size, shapes = layout
        request = {"stage": "decrypt", "ciphertexts": summed, "size": size, "summands": len(results),
                   "scale_bits": self.scale_bits}
        total = None
        for proxy, _ in results:
            info["decrypt_attempts"] = info.get("decrypt_attempts", 0) + 1
            got = self._exchange(grid, {proxy.node_id: dict(request)}, current_round, info, self.timeout)
            if got:
                res = got[proxy.node_id].content.config_records[ckks_mod.RECORD]
                total = ckks_mod.read_sum(res)
                info["ckks_residual"] = float(res["residual"])  # CKKS's largest error, rounded away
                info["ckks_error_bound"] = float(res["bound"])  # what the NSO checked it against
                break
        info["active"] = len(results)
        if total is None or total.size != size:
            info["failures"].append("no NSO decrypted the sum")
            return
        arrays = self._average(total, shapes, len(results))
        parameters = ndarrays_to_parameters(arrays)
        for _, fitres in results:
            fitres.parameters = parameters
        aggregated, metrics = context.strategy.aggregate_fit(current_round, results, info["fit_errors"])
        if aggregated:
            context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(aggregated, True)
            context.history.add_metrics_distributed_fit(server_round=current_round, metrics=metrics)
        info["completed"] = True

    def _average(self, total: np.ndarray, shapes: list[tuple[int, ...]], summands: int) -> list[np.ndarray]:
        """SecAgg+'s unmask arithmetic on the exact integer sum: factor out the weight, dequantize, shift."""
        arrays, start = [total[:1]], 1
        for shape in shapes:
            n = int(np.prod(shape))
            arrays.append(total[start:start + n].reshape(shape))
            start += n
        q_total_ratio, values = factor_extract(arrays)
        out = dequantize(values, self.clipping_range, self.q_range)
        offset = -(summands - 1) * self.clipping_range
        return [(v + offset) * (self.q_range / q_total_ratio) for v in out]


def payload_bytes(record: dict) -> int:
    """Bytes of the bytes-valued entries of a record (ciphertexts, keys, sums, masked vectors)."""
    total = 0
    for v in record.values():
        if isinstance(v, bytes):
            total += len(v)
        elif isinstance(v, list):
            total += sum(len(x) for x in v if isinstance(x, bytes))
    return total

"""Flower's SecAgg+ workflow, made to fail loudly.

Flower's SecAggPlusWorkflow logs "Secure aggregation halted" when a stage cannot continue (too few
NSOs left, a reply in the wrong format) and returns as if the round were done: the model stays
unchanged, the run goes on and exits 0. Here every round must reach the end of the unmask stage and
aggregate, or the run stops with the stage, the NSOs still active and the threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.server.workflow import SecAggPlusWorkflow

from clients.privacy.config import PrivacyConfig
from clients.privacy.sampling import rate_for, steps_per_round
from clients.secure_aggregation.config import SecureAggregationConfig
from clients.training import TrainingConfig, local_steps

from .ckks_aggregation import CkksWorkflow
from .strategy import RoundFailed, failure_reason


class CheckedSecAggPlusWorkflow(SecAggPlusWorkflow):
    """`train_timeout` (default: `timeout`) bounds the stage in which the NSOs train
    (collect_masked_vectors); `timeout` the key-exchange stages, which only answer with keys and
    shares and can be short, so that a node that died costs the survivors little."""

    def __init__(self, *args: Any, on_round: Any = None, train_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_round = on_round  # callback(dict) with what happened in the round
        self.key_timeout = self.timeout
        self.train_timeout = train_timeout or self.timeout
        self._stage = ""
        self._state: Any = None
        self._completed = False

    def _track(self, name: str, method, grid, context, state) -> bool:
        self._stage, self._state = name, state
        self.timeout = self.train_timeout if name == "collect_masked_vectors" else self.key_timeout
        start = time.perf_counter()
        ok = method(grid, context, state)
        self._stage_s[name] = time.perf_counter() - start
        if name == "unmask" and ok:
            self._completed = True
        return ok

    def setup_stage(self, grid, context, state) -> bool:
        ok = self._track("setup", super().setup_stage, grid, context, state)
        self._sampled = len(state.sampled_node_ids)
        self._forget_unshared(state)
        return ok

    def share_keys_stage(self, grid, context, state) -> bool:
        ok = self._track("share_keys", super().share_keys_stage, grid, context, state)
        self._forget_unshared(state)
        return ok

    @staticmethod
    def _forget_unshared(state) -> None:
        """Remove NSOs lost before they shared their key shares from the round.

        Nobody holds shares of such an NSO and nobody masked with it (pairwise masks are made
        only with the neighbours whose shares arrived). Flower still counts it as sampled, so at
        unmask it asks the others for its shares, which they do not have, and the round halts.
        """
        gone = state.sampled_node_ids - state.active_node_ids
        if gone:
            state.sampled_node_ids = set(state.active_node_ids)
            state.nid_to_neighbours = {nid: nbrs - gone for nid, nbrs in state.nid_to_neighbours.items()
                                       if nid not in gone}

    def collect_masked_vectors_stage(self, grid, context, state) -> bool:
        return self._track("collect_masked_vectors", super().collect_masked_vectors_stage, grid, context, state)

    def unmask_stage(self, grid, context, state) -> bool:
        return self._track("unmask", super().unmask_stage, grid, context, state)

    def __call__(self, grid, context) -> None:
        self._stage, self._state, self._completed = "", None, False
        self._stage_s: dict[str, float] = {}
        self._sampled = 0
        current_round = context.state.config_records["config"]["current_round"]
        super().__call__(grid, context)
        s = self._state
        info = {"round": current_round, "completed": self._completed, "stage": self._stage,
                "num_shares": getattr(s, "num_shares", None), "threshold": getattr(s, "threshold", None),
                "sampled": self._sampled,
                "active": len(getattr(s, "active_node_ids", ()) or ()),
                "failures": [failure_reason(f) for f in getattr(s, "failures", [])], "stage_s": dict(self._stage_s)}
        if self.on_round:
            self.on_round(info)
        if not self._completed:
            raise RoundFailed(
                f"round {current_round}: secure aggregation halted at stage '{self._stage or 'setup'}' with "
                f"{info['active']} of {info['sampled']} NSOs active (reconstruction threshold {info['threshold']}); "
                f"the model was not updated. Reasons: {'; '.join(info['failures']) or 'none reported'}")


ADAM_STEP_BOUND = 3.2  # (1 - 0.9) / sqrt(1 - 0.999), rounded up


def auto_ranges(cfg: SecureAggregationConfig, index: dict, training: TrainingConfig,
                privacy: PrivacyConfig) -> tuple[float, float]:
    """(max_weight, clipping_range) from the data and the training settings, where set to 'auto'.

    max_weight: the largest number of training windows of an NSO (the weight FedAvg gives it), so
    num_examples / max_weight <= 1 and the quantized weights cannot overflow. clipping_range: an
    Adam step moves a coordinate by at most lr (1 - beta1) / sqrt(1 - beta2) = 3.16 lr (defaults), so
    a round's delta stays within 3.2 lr x steps, and SecAgg+ clips (weight ratio <= 1) x delta. With
    SGD there is no such bound and Flower's default 8.0 applies. Clipped values are counted and
    reported either way.
    """
    windows = {n: int(c["train"]) for n, c in index["windows"].items()}
    persons = {n: int(c["train_persons"]) for n, c in index["windows"].items()}
    max_n = max(windows.values())
    if cfg.max_weight == "auto":
        max_weight = float(max_n)
    else:
        max_weight = float(cfg.max_weight)
        over = {n: w for n, w in windows.items() if w > max_weight}
        if over:
            nso, w = max(over.items(), key=lambda kv: kv[1])
            raise RoundFailed(f"secure_aggregation.max_weight = {max_weight:g} is below NSO {nso}'s {w} training "
                              f"windows; SecAgg+ would overflow. Allowed: >= {max_n}, or 'auto'")
    if cfg.clipping_range != "auto":
        return max_weight, float(cfg.clipping_range)
    if training.optimizer != "adam":
        return max_weight, 8.0
    if privacy.enabled:  # the same Poisson rates and step counts the clients will use
        steps = [steps_per_round(rate_for(privacy, training, n, persons[nso]), training.local_epochs,
                                 privacy.steps_per_round)
                 for nso, n in windows.items()]
    else:
        steps = [local_steps(n, training) for n in windows.values()]
    return max_weight, float(ADAM_STEP_BOUND * training.lr * max(steps))


def quantization_error_bound(num_examples: list[int], max_weight: float, clipping_range: float,
                             quantization_range: int) -> float:
    """Largest per-coordinate error of the SecAgg+ average from stochastic quantization.

    Each NSO's weighted value is rounded to a grid of step 2 c / Q (error < one step); the sum of
    the errors is divided by the sum of weight ratios n_i / max_weight.
    """
    step = 2 * clipping_range / quantization_range
    total_ratio = sum(round(n / max_weight * quantization_range) / quantization_range for n in num_examples)
    return len(num_examples) * step / total_ratio if total_ratio > 0 else float("inf")


def build_workflow(sa: SecureAggregationConfig, max_weight: float, clipping_range: float, on_round,
                   train_timeout: float | None = None):
    """The fit workflow of `sa.method`: the one place a secure-aggregation method is chosen on the
    server (a new method is one module and one branch here)."""
    if sa.method == "ckks":
        return CkksWorkflow(max_weight, clipping_range, sa.quantization_range, sa.ckks_scale_bits, sa.timeout_s,
                            train_timeout, on_round)
    return CheckedSecAggPlusWorkflow(
        num_shares=sa.num_shares, reconstruction_threshold=sa.reconstruction_threshold, max_weight=max_weight,
        clipping_range=clipping_range, quantization_range=sa.quantization_range, timeout=sa.timeout_s,
        on_round=on_round, train_timeout=train_timeout)


@dataclass
class SecAggPlan:
    """What the ServerApp needs to run SecAgg+ rounds: the workflow, the ranges every NSO is told,
    and the per-round check of the quantization error."""

    workflow: CheckedSecAggPlusWorkflow | CkksWorkflow
    fit_config: dict[str, float]
    on_aggregate: Callable[[int, list], None]


def plan_secure_aggregation(sa: SecureAggregationConfig, index: dict, training: TrainingConfig,
                            privacy: PrivacyConfig, recorder, ranges: tuple[float, float] | None = None,
                            train_timeout: float | None = None) -> SecAggPlan:
    """Ranges from the data (or `ranges`, as the federation scope fixes them), settings recorded,
    shares checked against the number of NSOs; the training stage waits `train_timeout`
    (federation.reply_timeout_s) when given, the key stages secure_aggregation.timeout_s."""
    max_weight, clipping_range = ranges or auto_ranges(sa, index, training, privacy)
    recorder.secagg_settings(max_weight, clipping_range, sa.quantization_range)
    if sa.method == "secaggplus" and isinstance(sa.num_shares, int) and sa.num_shares > len(index["nsos"]):
        raise RoundFailed(f"secure_aggregation.num_shares = {sa.num_shares} exceeds the {len(index['nsos'])} NSOs")
    workflow = build_workflow(sa, max_weight, clipping_range, recorder.secagg_round, train_timeout)

    def on_aggregate(server_round: int, results: list) -> None:
        recorder.secagg_bound(quantization_error_bound([r.num_examples for r in results if r.num_examples > 0],
                                                       max_weight, clipping_range, sa.quantization_range))

    return SecAggPlan(workflow, {"secagg_clipping_range": clipping_range, "secagg_max_weight": max_weight},
                      on_aggregate)

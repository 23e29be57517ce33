"""Federation-wide person-level DP: DP-FedAvg with distributed noise under SecAgg+ (privacy.scope =
"federation"; docs/privacy.md).

Each round every NSO Poisson-samples its training persons at one common rate q, sums their clipped
updates and adds its noise share on the SecAgg+ grid (clients/privacy/noise_share.py); it replies
with a data-independent weight of 1. SecAgg+ reveals the average of the NSOs' vectors; the server
multiplies it back into their sum, divides by the expected number of sampled persons q * N and steps
SGD with momentum. Persons belong to one NSO, so independent sampling at the same q is Poisson
sampling over the union: per round one subsampled Gaussian mechanism with noise multiplier sigma
relative to the sensitivity C_eff, composed over rounds by the server's ledger.

Less noise than accounted is never released silently: SecAgg+ cannot unmask unless at least its
reconstruction threshold of NSOs sent vectors, and k_min (privacy.min_nsos) may not exceed it; the
strategy counts the contributions again before stepping; an NSO whose noisy value would be clipped
by SecAgg+ refuses to send; without SecAgg+ the scope is refused. The plan itself (rate, noise,
grid) is clients/privacy/federation_plan.py: every NSO recomputes it and refuses less noise.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from flwr.app import RecordDict
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg

from clients.privacy.accounting import PrivacyLedger
from clients.privacy.adaptive_clip import next_clip_scale, split_count
from clients.privacy.federation_plan import FederationDP

from .strategy import BudgetSpent, RoundFailed, _Strict

class DPFedAvg(_Strict, FedAvg):
    """Sum of the NSOs' noisy sums / expected persons, then the server step; accounted. With
    adaptive clipping (clients/privacy/adaptive_clip.py) the sum carries the noisy count of unclipped
    persons too, and the server sends the next round's clip scale."""

    def __init__(self, dp: FederationDP, budget: float | None, recorder, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dp, self.budget, self.recorder = dp, budget, recorder
        self.ledger = PrivacyLedger(RecordDict())
        self.ledger.noise_multiplier = dp.noise_multiplier
        self.share_ledger = PrivacyLedger(RecordDict())
        self._momentum: list[np.ndarray] | None = None
        self.clip_scale = 1.0  # adaptive clipping: this round's clip is dp.clip * clip_scale
        self.view: list[np.ndarray] | None = None  # set to [] to keep each round's aggregate (an audit)
        recorder.event("federation_dp", **asdict(dp))

    def configure_fit(self, server_round, parameters, client_manager):
        after = self.ledger.epsilon_after(self.dp.noise_multiplier, self.dp.sample_rate, 1, self.dp.delta,
                                          self.dp.accountant)
        if self.budget is not None and after > self.budget * (1 + 1e-9):
            raise BudgetSpent(f"round {server_round}: the next round would spend epsilon {after:.3f} > budget "
                              f"{self.budget:g} (privacy budget)")
        instructions = super().configure_fit(server_round, parameters, client_manager)
        for _, ins in instructions:
            ins.config["fdp_clip_scale"] = self.clip_scale
        return instructions

    def aggregate_fit(self, server_round, results, failures):
        self._problems("training", server_round, results, failures, self._expected_fit)
        contributions = [res for _, res in results if res.num_examples > 0]
        if len(contributions) < self.dp.min_nsos:
            raise RoundFailed(f"round {server_round}: only {len(contributions)} NSOs' noise shares reached the "
                              f"aggregate, fewer than privacy.min_nsos = {self.dp.min_nsos}; it would carry less "
                              "noise than accounted, so the model is not updated")
        if any(res.num_examples != 1 for res in contributions):
            raise RoundFailed(f"round {server_round}: an NSO replied with a data-dependent weight; the federation "
                              "scope needs weight 1 from every NSO")
        vectors = [parameters_to_ndarrays(res.parameters) for res in contributions]
        arrays = len(self._global) + (1 if self.dp.adaptive else 0)
        if any(len(v) != arrays for v in vectors):
            raise RoundFailed(f"round {server_round}: an aggregate does not have the {arrays} arrays the plan sends")
        total = [np.mean([v[i] for v in vectors], axis=0) * len(contributions) for i in range(arrays)]  # SecAgg+: all equal
        if self.view is not None:  # the server's view: the noisy sum SecAgg+ revealed this round
            self.view.append(np.concatenate([a.ravel() for a in total]))
        total, count = split_count(total, self.dp.count_scale)
        scale = self.clip_scale
        update = [a * scale / self.dp.expected_persons for a in total]
        if not all(np.isfinite(u).all() for u in update) or (count is not None and not np.isfinite(count)):
            raise RoundFailed(f"round {server_round}: the aggregate holds non-finite values; the model is not updated")
        step = self._step(update, self.dp.noise_variance(len(contributions)) * scale ** 2)
        new = [(g + s).astype(g.dtype) for g, s in zip(self._global, step)]
        self._account(server_round, len(contributions))
        if count is not None:
            self.clip_scale, unclipped = next_clip_scale(scale, count, self.dp.expected_persons,
                                                         self.dp.clip_quantile, self.dp.clip_lr)
            self.recorder.current.update({"dp.clip": self.dp.clip * scale, "dp.unclipped_fraction": unclipped})
        if self.fit_metrics_aggregation_fn:
            self.fit_metrics_aggregation_fn([(res.num_examples, res.metrics) for _, res in results])
        return ndarrays_to_parameters(new), {}

    def _step(self, update: list[np.ndarray], noise_var: float) -> list[np.ndarray]:
        """SGD with momentum; FedAdam as Reddi et al. 2021 give it (beta2 0.99, no bias correction,
        tau bounding how far it divides); or Adam whose second moment has the known noise variance
        removed (Tang et al. 2024, DP-AdamBC): plain Adam divides by the noise's size, not the signal's."""
        dp, b1 = self.dp, self.dp.server_momentum
        b2 = 0.99 if dp.server_optimizer == "fedadam" else 0.999
        if self._momentum is None:
            self._momentum = [np.zeros_like(u) for u in update]
            self._second = [np.zeros_like(u) for u in update]
            self._t = 0
        self._t += 1
        if dp.server_optimizer == "sgd":
            self._momentum = [b1 * m + u for m, u in zip(self._momentum, update)]
            return [dp.server_lr * m for m in self._momentum]
        self._momentum = [b1 * m + (1 - b1) * u for m, u in zip(self._momentum, update)]
        if dp.server_optimizer == "fedadam":
            self._second = [b2 * v + (1 - b2) * u * u for v, u in zip(self._second, update)]
            return [dp.server_lr * m / (np.sqrt(v) + dp.server_tau) for m, v in zip(self._momentum, self._second)]
        self._second = [b2 * v + (1 - b2) * u * u for v, u in zip(self._second, update)]
        out = []
        for m, v in zip(self._momentum, self._second):
            v_hat = np.maximum(v / (1 - b2 ** self._t) - noise_var, noise_var)
            out.append(dp.server_lr * (m / (1 - b1 ** self._t)) / np.sqrt(v_hat))
        return out

    def _account(self, server_round: int, contributions: int) -> None:
        dp = self.dp
        self.ledger.add(dp.noise_multiplier, dp.sample_rate, 1)
        self.share_ledger.add(dp.share_noise_multiplier, dp.sample_rate, 1)
        self.recorder.current.update({
            "dp.epsilon": self.ledger.epsilon(dp.delta, dp.accountant),
            "dp.nso_share_epsilon": self.share_ledger.epsilon(dp.delta, dp.accountant),
            "dp.noise_multiplier": dp.noise_multiplier, "dp.sample_rate": dp.sample_rate,
            "dp.contributions": contributions})

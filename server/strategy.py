"""Flower strategies that fail loudly and aggregate model deltas.

Flower's FedAvg accepts client failures and, if configured not to, returns no parameters and keeps
the old model without an error. Both would let a run report metrics of a model some NSOs never
trained. Here any failed NSO ends the run with its reason, except under secure aggregation, where
the SecAgg+ protocol itself decides whether enough NSOs remain (its dropout rules) and the dropped
NSOs are recorded. Clients send deltas (new - global); the strategies turn them back into weights
before the usual FedAvg/FedProx/FedAdam arithmetic, so each strategy works unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flwr.common import FitRes, Parameters, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAdam, FedAvg, FedProx

from .config import FederationConfig


class RoundFailed(RuntimeError):
    """A round could not aggregate every selected NSO's reply."""


class BudgetSpent(Exception):
    """Every selected NSO has spent its privacy budget: the run stops here, by design."""


def failure_reason(failure: Any) -> str:
    """The reason of a failed reply: an exception (whose first argument may be a Flower Error with
    a reason), or a (proxy, result) pair whose status says what went wrong."""
    if isinstance(failure, BaseException):
        err = failure.args[0] if failure.args else failure
        return str(getattr(err, "reason", None) or err)
    if isinstance(failure, tuple):
        _, res = failure
        return f"status {res.status.code.name}: {res.status.message}"
    return str(getattr(failure, "reason", failure))


class _Strict:
    tolerate_dropouts: bool = False
    on_dropped: Callable[[int, list[str]], None] | None = None
    on_aggregate: Callable[[int, list[FitRes]], None] | None = None
    _global: list = []

    _expected_fit: int = 0
    _expected_evaluate: int = 0
    evaluate_every: int = 1
    rounds: int = 0
    on_skipped_evaluation: Callable[[int], None] | None = None

    def evaluates(self, server_round: int) -> bool:
        """federation.evaluate_every: the initial model, every n-th round and the last are evaluated."""
        return server_round % self.evaluate_every == 0 or server_round >= self.rounds

    def configure_fit(self, server_round, parameters, client_manager):
        self._global = parameters_to_ndarrays(parameters)
        instructions = super().configure_fit(server_round, parameters, client_manager)
        self._expected_fit = len(instructions)
        return instructions

    def configure_evaluate(self, server_round, parameters, client_manager):
        if not self.evaluates(server_round):
            self._expected_evaluate = 0
            if self.on_skipped_evaluation:
                self.on_skipped_evaluation(server_round)
            return []
        instructions = super().configure_evaluate(server_round, parameters, client_manager)
        self._expected_evaluate = len(instructions)
        return instructions

    def _problems(self, stage: str, server_round: int, results, failures, expected: int) -> None:
        """Failed replies and replies that never came (timeouts): fatal, or dropouts under SecAgg+."""
        reasons = [failure_reason(f) for f in failures]
        missing = expected - len(results) - len(failures)
        if missing > 0:
            reasons.append(f"{missing} NSO(s) did not reply within the timeout")
        if not reasons:
            return
        if not (self.tolerate_dropouts and results):
            raise RoundFailed(f"round {server_round}: {len(reasons)} NSO(s) failed during {stage}: " + "; ".join(reasons))
        if self.on_dropped:
            self.on_dropped(server_round, [f"{stage}: {r}" for r in reasons])

    def aggregate_fit(self, server_round, results, failures):
        self._problems("training", server_round, results, failures, self._expected_fit)
        if not results:
            raise RoundFailed(f"round {server_round}: no NSO returned an update")
        if self.on_aggregate:
            self.on_aggregate(server_round, [res for _, res in results])
        # NSOs whose privacy budget is spent return a zero delta with weight 0: leave them out.
        training = [(proxy, res) for proxy, res in results if res.num_examples > 0]
        if not training:
            if self.fit_metrics_aggregation_fn:  # still record who stopped, and at which epsilon
                self.fit_metrics_aggregation_fn([(res.num_examples, res.metrics) for _, res in results])
            raise BudgetSpent(f"round {server_round}: every NSO has spent its privacy budget")
        as_weights = []
        for proxy, res in training:
            delta = parameters_to_ndarrays(res.parameters)
            weights = [g + d.astype(g.dtype) for g, d in zip(self._global, delta)]
            as_weights.append((proxy, FitRes(res.status, ndarrays_to_parameters(weights), res.num_examples,
                                             res.metrics)))
        return super().aggregate_fit(server_round, as_weights, [])

    def aggregate_evaluate(self, server_round, results, failures):
        self._problems("evaluation", server_round, results, failures, self._expected_evaluate)
        # Failures were raised or recorded above; Flower's FedAvg would silently skip the round's
        # evaluation (accept_failures=False) if it saw them.
        return super().aggregate_evaluate(server_round, results, [])


class StrictFedAvg(_Strict, FedAvg):
    pass


class StrictFedProx(_Strict, FedProx):
    pass


class StrictFedAdam(_Strict, FedAdam):
    pass


def make_strategy(cfg: FederationConfig, n_nsos: int, initial: Parameters, tolerate_dropouts: bool = False,
                  on_dropped=None, on_aggregate=None, factory: Callable[..., FedAvg] | None = None,
                  **callbacks) -> FedAvg:
    """The configured strategy (or `factory(**settings)`, e.g. DP-FedAvg), waiting for every NSO
    and sampling `fraction_fit` of them."""
    fit_clients = max(1, math.ceil(cfg.fraction_fit * n_nsos))
    # Every NSO must be there, except under SecAgg+, whose dropout rules decide how many suffice:
    # waiting for a node that died would block the run for a day (Flower's sampling timeout).
    least = 2 if tolerate_dropouts else n_nsos
    common = dict(fraction_fit=cfg.fraction_fit, fraction_evaluate=1.0,
                  min_fit_clients=min(fit_clients, least), min_evaluate_clients=least if tolerate_dropouts else n_nsos,
                  min_available_clients=least, initial_parameters=initial, accept_failures=False, **callbacks)
    if factory is not None:
        strategy = factory(**common)
    elif cfg.strategy == "fedprox":
        strategy = StrictFedProx(proximal_mu=cfg.proximal_mu, **common)
    elif cfg.strategy == "fedadam":
        strategy = StrictFedAdam(eta=cfg.server_lr, **common)
    else:
        strategy = StrictFedAvg(**common)
    strategy.tolerate_dropouts = tolerate_dropouts
    strategy.on_dropped = on_dropped
    strategy.on_aggregate = on_aggregate
    strategy.evaluate_every, strategy.rounds = cfg.evaluate_every, cfg.rounds
    return strategy

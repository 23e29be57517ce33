"""Flower strategies that fail loudly.

Flower's FedAvg accepts client failures and, if configured not to, returns no parameters and keeps
the old model without an error. Both would let a run report metrics of a model some NSOs never
trained. Here any failed NSO ends the run with its reason.
"""

from __future__ import annotations

import math
from typing import Any

from flwr.common import Parameters
from flwr.server.strategy import FedAdam, FedAvg, FedProx

from .config import FederationConfig


class RoundFailed(RuntimeError):
    """A round could not aggregate every selected NSO's reply."""


class BudgetSpent(Exception):
    """Every selected NSO has spent its privacy budget: the run stops here, by design."""


def _reason(failure: Any) -> str:
    if isinstance(failure, BaseException):
        err = failure.args[0] if failure.args else failure
        return getattr(err, "reason", None) or str(err)
    _, res = failure
    return f"status {res.status.code.name}: {res.status.message}"


class _Strict:
    def aggregate_fit(self, server_round, results, failures):
        if failures:
            raise RoundFailed(f"round {server_round}: {len(failures)} NSO(s) failed during training: "
                              + "; ".join(_reason(f) for f in failures))
        if not results:
            raise RoundFailed(f"round {server_round}: no NSO returned an update")
        # NSOs whose privacy budget is spent return the model unchanged with weight 0: leave them out.
        training = [(proxy, res) for proxy, res in results if res.num_examples > 0]
        if not training:
            if self.fit_metrics_aggregation_fn:  # still record who stopped, and at which epsilon
                self.fit_metrics_aggregation_fn([(res.num_examples, res.metrics) for _, res in results])
            raise BudgetSpent(f"round {server_round}: every NSO has spent its privacy budget")
        return super().aggregate_fit(server_round, training, failures)

    def aggregate_evaluate(self, server_round, results, failures):
        if failures:
            raise RoundFailed(f"round {server_round}: {len(failures)} NSO(s) failed during evaluation: "
                              + "; ".join(_reason(f) for f in failures))
        return super().aggregate_evaluate(server_round, results, failures)


class StrictFedAvg(_Strict, FedAvg):
    pass


class StrictFedProx(_Strict, FedProx):
    pass


class StrictFedAdam(_Strict, FedAdam):
    pass


def make_strategy(cfg: FederationConfig, n_nsos: int, initial: Parameters, **callbacks) -> FedAvg:
    """The configured strategy, waiting for every NSO and sampling `fraction_fit` of them."""
    fit_clients = max(1, math.ceil(cfg.fraction_fit * n_nsos))
    common = dict(fraction_fit=cfg.fraction_fit, fraction_evaluate=1.0, min_fit_clients=fit_clients,
                  min_evaluate_clients=n_nsos, min_available_clients=n_nsos, initial_parameters=initial,
                  accept_failures=False, **callbacks)
    if cfg.strategy == "fedprox":
        return StrictFedProx(proximal_mu=cfg.proximal_mu, **common)
    if cfg.strategy == "fedadam":
        return StrictFedAdam(eta=cfg.server_lr, **common)
    return StrictFedAvg(**common)

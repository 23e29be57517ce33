"""Whole-run privacy accounting at constant cost per round, and the one delta policy.

Flower's examples/opacus build a new PrivacyEngine every round, so their epsilon covers one round.
Here each NSO's history of (noise multiplier, sample rate, steps) stays in its node's Context state
across rounds and the reported epsilon is the whole run's (Opacus' accountants, made with
`create_accountant`).

Recomputing Opacus' RDP accountant over the whole history every round costs a fresh RDP curve per
entry (measured: 45 of 51 s of a small DP run, growing with the square of the rounds). The ledger
instead keeps the RDP curve of one step of each (sigma, q) it met and the running total curve:
Opacus sums the per-entry curves `steps * rdp(q, sigma)` left to right, and so does the ledger, one
entry per round, so its epsilon is bit-for-bit Opacus' (tests/test_accounting.py). The PRV
accountant composes identical (sigma, q) entries into one with their summed steps, which is the
same composition; its numerical error is within the accountant's own eps_error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping

import numpy as np
from opacus.accountants import create_accountant
from opacus.accountants.analysis import rdp as rdp_analysis
from opacus.accountants.utils import get_noise_multiplier

from datasets.errors import UserError

# RDP orders: Opacus' default stops at 63, where small noise multipliers find their optimum at the
# edge (a valid but loose bound); these reach 1024 like Google's dp-accounting.
RDP_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [80, 96, 128, 192, 256, 384, 512, 768, 1024]

History = list[tuple[float, float, int]]

PLD_DISCRETISATION = 1e-3  # dp-accounting's value_discretization_interval for pld_epsilon
DELTA_KEY = "privacy_delta"  # fit-config key: the run's one delta, chosen by the server, used by every NSO


def _eps_kwargs(accountant: str) -> dict:
    return {"alphas": RDP_ORDERS} if accountant == "rdp" else {}


def merged(history: History) -> History:
    """Identical (sigma, q) entries composed into one with their summed steps, in first-seen order."""
    steps: dict[tuple[float, float], int] = {}
    for s, q, n in history:
        steps[(float(s), float(q))] = steps.get((float(s), float(q)), 0) + int(n)
    return [(s, q, n) for (s, q), n in steps.items()]


def epsilon_of(history: History, delta: float, accountant: str) -> float:
    """Epsilon of a history of (noise multiplier, sample rate, steps), as Opacus accounts it."""
    if not history:
        return 0.0
    return _epsilon(tuple((float(s), float(q), int(n)) for s, q, n in history), float(delta), accountant)


# Both are pure functions of public numbers, about 0.3 s (an epsilon) and 2.5 s (a calibration) each:
# every NSO of a local run checks the same plan, and a run's set-up calibrates the same plan twice.
@functools.lru_cache(maxsize=256)
def _epsilon(history: tuple[tuple[float, float, int], ...], delta: float, accountant: str) -> float:
    acc = create_accountant(accountant)
    acc.history = merged(list(history)) if accountant == "prv" else list(history)
    return float(acc.get_epsilon(delta, **_eps_kwargs(accountant)))


@functools.lru_cache(maxsize=64)
def calibrate(target_epsilon: float, delta: float, q: float, total_steps: int, accountant: str) -> float:
    """Noise multiplier reaching target_epsilon after total_steps at rate q (never above it)."""
    return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta, sample_rate=q,
                                      steps=total_steps, accountant=accountant, epsilon_tolerance=0.005,
                                      **_eps_kwargs(accountant)))


def rdp_epsilon(total: np.ndarray, delta: float) -> float:
    eps, _ = rdp_analysis.get_privacy_spent(orders=RDP_ORDERS, rdp=total, delta=delta)
    return float(eps)


class PrivacyLedger:
    """The accountant history of one NSO, kept in its node's Context state across rounds, with the
    running RDP curve so that each round's epsilon costs the same, however long the run."""

    KEY = "dp-ledger"

    def __init__(self, state) -> None:
        from flwr.app import ConfigRecord

        if self.KEY not in state.config_records:
            state.config_records[self.KEY] = ConfigRecord({"history": "[]", "noise_multiplier": -1.0,
                                                           "rdp_total": "null", "rdp_step": "{}"})
        self._rec = state.config_records[self.KEY]

    @property
    def history(self) -> History:
        return [tuple(x) for x in json.loads(str(self._rec["history"]))]

    @property
    def noise_multiplier(self) -> float | None:
        v = float(self._rec["noise_multiplier"])
        return None if v < 0 else v

    @noise_multiplier.setter
    def noise_multiplier(self, v: float) -> None:
        self._rec["noise_multiplier"] = float(v)

    def _step_curve(self, sigma: float, q: float) -> np.ndarray:
        """RDP of one step at (sigma, q), computed once per run and kept in the state."""
        cache = json.loads(str(self._rec["rdp_step"]))
        key = json.dumps([float(sigma), float(q)])
        if key not in cache:
            cache[key] = rdp_analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=RDP_ORDERS).tolist()
            self._rec["rdp_step"] = json.dumps(cache)
        return np.asarray(cache[key])

    def _total(self) -> np.ndarray | None:
        total = json.loads(str(self._rec["rdp_total"]))
        return None if total is None else np.asarray(total)

    def _with(self, sigma: float, q: float, steps: int) -> np.ndarray:
        # Opacus: sum([compute_rdp(q, sigma, steps_i) ...]) = ((0 + c_1) + c_2) + ..., c_i = curve * steps_i
        entry = self._step_curve(sigma, q) * steps
        total = self._total()
        return 0 + entry if total is None else total + entry

    def epsilon(self, delta: float, accountant: str) -> float:
        """Epsilon of the rounds accounted so far."""
        history = self.history
        if not history:
            return 0.0
        return rdp_epsilon(self._total(), delta) if accountant == "rdp" else epsilon_of(history, delta, accountant)

    def epsilon_after(self, sigma: float, q: float, steps: int, delta: float, accountant: str) -> float:
        """Epsilon if a round of `steps` steps at (sigma, q) were added."""
        if accountant == "rdp":
            return rdp_epsilon(self._with(sigma, q, steps), delta)
        return epsilon_of(self.history + [(sigma, q, steps)], delta, accountant)

    def add(self, sigma: float, q: float, steps: int) -> None:
        self._rec["rdp_total"] = json.dumps(self._with(sigma, q, steps).tolist())
        self._rec["history"] = json.dumps(self.history + [(sigma, q, steps)])


def units_per_nso(index: Mapping, unit: str) -> dict[str, int]:
    """Training units (windows or persons) of every NSO, from a prepared data index."""
    key = "train_persons" if unit == "person" else "train"
    return {nso: max(int(c[key]), 1) for nso, c in index["windows"].items()}


def resolve_delta(delta: float | None, units: Mapping[str, int], unit: str) -> float:
    """The one delta policy: one delta for every NSO, 0.1 / (largest NSO's number of units) unless
    given, and a given delta must be below 1/n for every NSO (else the guarantee is vacuous)."""
    largest = max(units.values())
    if delta is None:
        return 0.1 / largest
    bad = {nso: k for nso, k in units.items() if delta >= 1.0 / k}
    if bad:
        nso, k = max(bad.items(), key=lambda kv: kv[1])
        raise UserError(f"privacy.delta = {delta:g} must be below 1/n for every NSO; NSO {nso} has "
                        f"n = {k} training {unit}s (1/n = {1 / k:g}). Allowed: delta < "
                        f"{1 / largest:g}, or leave it unset for 0.1/n = {0.1 / largest:g}")
    return delta


def pld_epsilon(history: History, delta: float) -> float:
    """Epsilon of a history of (noise multiplier, sample rate, steps) by Google's dp-accounting PLD
    accountant (Poisson-subsampled Gaussians, pessimistic discretisation: an upper bound). Tighter
    than RDP's conversion by about 10 % at these settings; the summary reports the tighter of the
    two (simulation/results/summary.py), both being valid bounds. The loss grid of 1e-3 (dp-accounting's
    default 1e-4) is 10x faster and agrees to 4 digits; pessimistic, so never below the truth."""
    if not history:
        return 0.0
    import dp_accounting as dpa

    acc = dpa.pld.PLDAccountant(value_discretization_interval=PLD_DISCRETISATION)
    for s, q, n in merged(history):
        event = dpa.GaussianDpEvent(s) if q >= 1 else dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(s))
        acc.compose(event, int(n))
    return float(acc.get_epsilon(delta))

"""The analytic Gaussian mechanism (Balle and Wang 2018, Theorem 8), for single releases.

A Gaussian mechanism with noise multiplier z (noise std / L2 sensitivity) is (epsilon, delta)-DP
exactly when delta >= Phi(1/(2z) - epsilon z) - e^epsilon Phi(-1/(2z) - epsilon z). This is the
tight curve, so it never reports more epsilon than RDP's conversion does (which loses about 10 %
at epsilon 1); dp-accounting's PLD accountant gives the same numbers (tests/test_accounting_tight.py).

Gaussian mechanisms compose exactly: k of them with multipliers z_i on the same persons are
together one Gaussian mechanism with z = (sum z_i^-2)^(-1/2) (Dong, Roth and Su 2019, Gaussian
DP), which is how the release ledger (clients/estimation/release_ledger.py) totals releases.
"""

from __future__ import annotations

import math

from scipy.special import ndtr  # standard normal CDF, accurate in the tails


def delta_at(z: float, epsilon: float) -> float:
    """The smallest delta for which noise multiplier z is (epsilon, delta)-DP."""
    a, b = 1 / (2 * z), epsilon * z
    return float(ndtr(a - b) - math.exp(epsilon) * ndtr(-a - b)) if epsilon < 700 else 0.0


def _smallest(too_small, lo: float, hi: float, limit: float) -> float:
    """The smallest x in [lo, limit] with too_small(x) false (to 1e-9 relative, from above), for a
    too_small that is true below some point and false above it; inf if none up to `limit`."""
    while too_small(hi):
        lo, hi = hi, 2 * hi
        if hi > limit:
            return math.inf
    for _ in range(200):
        mid = (lo + hi) / 2
        if too_small(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * hi:
            break
    return hi  # too_small(hi) is false: never below the true value


def epsilon_of(z: float, delta: float) -> float:
    """The smallest epsilon (to 1e-9 relative, from above) at which noise multiplier z is (epsilon, delta)-DP."""
    if z <= 0:
        return math.inf
    if delta_at(z, 0.0) <= delta:
        return 0.0
    return _smallest(lambda eps: delta_at(z, eps) > delta, 0.0, 1.0, 1e6)


def noise_multiplier(epsilon: float, delta: float) -> float:
    """The smallest z (to 1e-9 relative, from above) that is (epsilon, delta)-DP."""
    z = _smallest(lambda z: delta_at(z, epsilon) > delta, 1e-3, 1.0, 1e9)
    if math.isinf(z):
        raise ValueError(f"no noise multiplier reaches epsilon {epsilon:g} at delta {delta:g}")
    return z


def composed(multipliers: list[float]) -> float:
    """The one Gaussian mechanism that k Gaussian mechanisms on the same persons make together."""
    total = sum(z ** -2 for z in multipliers if z > 0)
    return math.inf if total == 0 else total ** -0.5

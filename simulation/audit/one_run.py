"""The one-run audit of Steinke, Nasr and Jagielski (2023, "Privacy auditing with one (1) training
run", Appendix D): m canaries, each included independently with probability 1/2; the auditor makes
r guesses (the rest abstain), v of them correct. Under (epsilon, delta)-DP the number of correct
guesses is dominated by Binomial(r, e^eps / (1 + e^eps)) up to a delta term (their Theorem 3.3), so
a p-value below 1 - confidence rejects (epsilon, delta)-DP; the largest rejected epsilon is the
empirical lower bound. Written from the paper's statement; tests check it against closed forms.
"""

from __future__ import annotations

import math

from scipy import stats


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P[at least v of r guesses correct] for an (epsilon, delta)-DP mechanism with m canaries."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    q = 1 / (1 + math.exp(-epsilon))  # accuracy of epsilon-DP randomized response
    beta = stats.binom.sf(v - 1, r, q)  # P[Binomial(r, q) >= v]
    if delta == 0:
        return float(min(beta, 1.0))
    alpha, below = 0.0, 0.0  # alpha = max over i of P[v > Binomial(r, q) >= v - i] / i
    for i in range(1, v + 1):
        below += stats.binom.pmf(v - i, r, q)
        alpha = max(alpha, below / i)
    return float(min(beta + alpha * delta * 2 * m, 1.0))


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, confidence: float = 0.95, hi: float = 50.0) -> float:
    """The largest epsilon the guesses reject at `confidence` (0 when none is rejected)."""
    level = 1 - confidence
    if p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    lo = 0.0  # p_value(lo) < level
    for _ in range(60):
        mid = (lo + hi) / 2
        if p_value(m, r, v, mid, delta) < level:
            lo = mid
        else:
            hi = mid
    return lo


def guess(scores, included, fraction: float) -> tuple[int, int]:
    """Guess 'in' for the top fraction/2 of scores and 'out' for the bottom fraction/2 (abstain on
    the rest); (guesses r, correct v)."""
    import numpy as np

    scores, included = np.asarray(scores, dtype=np.float64), np.asarray(included, dtype=bool)
    k = max(1, int(round(len(scores) * fraction / 2)))
    order = np.argsort(scores, kind="stable")
    out_guess, in_guess = order[:k], order[-k:]
    return 2 * k, int(included[in_guess].sum() + (~included[out_guess]).sum())

"""Coverage = persons of the register found in the third party's list / persons measured, with an
interval that fits the design, corrected for matches that key errors hide.

- Matches: the PSI intersection size M of the distinct normalised keys. A person in both lists is
  found only if the third party's record has no key error: E[M] = lambda C n, with C the coverage,
  n the persons measured and lambda the match rate.
- Match rate: from a small consented clerical sample - persons whose records were linked by hand
  (with their consent), so for them it is known whether they are in the list and whether their key
  matches exactly: lambda_hat = exact matches / persons in the list, a binomial proportion.
- Estimate: C_hat = M_released / (lambda_hat n); without a clerical sample, M / n (biased down by
  lambda, which the sweeps show).
- Variance (delta method): var(M) = n p (1 - p) x design effect for a survey sample of the
  register (p = lambda C), n C lambda (1 - lambda) for the full register (only the key errors are
  random), plus the release noise; relative variances of M and lambda_hat add.
- DP (optional): the released count is M plus two-sided geometric noise (discrete Laplace,
  pure epsilon-DP for a count of sensitivity 1: after de-duplication a person adds at most one
  match), variance 2 e^-eps / (1 - e^-eps)^2, included in the interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    coverage: float
    ci_low: float
    ci_high: float
    coverage_uncorrected: float
    matched_released: float
    persons: int
    match_rate: float | None
    match_rate_se: float | None
    epsilon: float | None
    noise_variance: float

    def as_dict(self) -> dict:
        return asdict(self)


def release(matched: int, epsilon: float | None, rng: np.random.Generator) -> tuple[int, float]:
    """(released count, its noise variance): two-sided geometric noise of scale 1/epsilon."""
    if epsilon is None:
        return int(matched), 0.0
    p = 1 - math.exp(-epsilon)
    noise = int(rng.geometric(p)) - int(rng.geometric(p))
    return int(matched) + noise, 2 * math.exp(-epsilon) / (1 - math.exp(-epsilon)) ** 2


def match_rate(in_source: int, matched: int) -> tuple[float | None, float | None]:
    """lambda_hat and its standard error from the clerical sample (None without one)."""
    if in_source <= 0:
        return None, None
    lam = matched / in_source
    return lam, math.sqrt(max(lam * (1 - lam), 1e-12) / in_source)


def estimate(matched: int, persons: int, design: str, design_effect: float, lam: float | None,
             lam_se: float | None, epsilon: float | None, rng: np.random.Generator) -> Estimate:
    released, noise_var = release(matched, epsilon, rng)
    rate = lam if lam else 1.0
    c = released / (rate * persons)
    p = min(max(released / persons, 1e-9), 1 - 1e-9)  # = lambda C
    if design == "survey":
        var_m = design_effect * persons * p * (1 - p)
    else:
        var_m = persons * min(max(c, 0.0), 1.0) * rate * (1 - rate)
    rel = (var_m + noise_var) / max(released, 1) ** 2 + ((lam_se / lam) ** 2 if lam else 0.0)
    se = abs(c) * math.sqrt(rel)
    return Estimate(coverage=c, ci_low=max(c - Z95 * se, 0.0), ci_high=min(c + Z95 * se, 1.0),
                    coverage_uncorrected=released / persons, matched_released=released, persons=persons,
                    match_rate=lam, match_rate_se=lam_se, epsilon=epsilon, noise_variance=noise_var)

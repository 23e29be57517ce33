"""The federation scope's noise plan: sampling rate, noise, clip and SecAgg+ grid for a run.

Computed from public information only - the config and the data index (persons per NSO) - so the
server computes it to account and instruct, and every NSO computes it again to check what the
server sent: an instruction that carries less noise than this plan is refused (clients/nso_client.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..secure_aggregation.config import SecureAggregationConfig
from .accounting import calibrate, epsilon_of, resolve_delta
from .config import PrivacyConfig
from .noise_share import effective_clip, grid_step

DEFAULT_RATE = 0.5
FIT_KEYS = ("sample_rate", "clip", "noise_std", "grid_step", "clipping_range", "count_scale")


def secagg_threshold(sa: SecureAggregationConfig, n: int) -> int:
    """The reconstruction threshold Flower's SecAgg+ workflow derives for n sampled NSOs."""
    shares = sa.num_shares
    if isinstance(shares, float):
        shares = round(shares * n)
        if shares < n and shares % 2 == 0:
            shares += 1
        if shares <= 2:
            shares = n
    t = sa.reconstruction_threshold
    return max(round(t * shares), 2) if isinstance(t, float) else int(t)


@dataclass(frozen=True)
class FederationDP:
    """Everything the server accounts and every NSO must apply, fixed before round 1."""

    sample_rate: float
    noise_multiplier: float  # sigma, relative to effective_clip
    clip: float
    effective_clip: float
    noise_std: float  # each NSO's share: sigma * effective_clip / sqrt(min_nsos)
    min_nsos: int
    nsos: int
    persons: int
    expected_persons: float
    delta: float
    accountant: str
    grid_step: float
    clipping_range: float
    server_optimizer: str
    server_lr: float
    server_momentum: float
    server_tau: float
    count_scale: float = 0.0  # adaptive clipping: the unclipped-count coordinate's scale s (0: a fixed clip)
    clip_quantile: float | None = None
    clip_lr: float = 0.0

    @property
    def adaptive(self) -> bool:
        return self.count_scale > 0

    def noise_variance(self, contributions: int) -> float:
        """Per-coordinate variance of the DP noise in the averaged update (grid rounding included)."""
        share = self.noise_std ** 2 + self.grid_step ** 2 / 4
        return contributions * share / self.expected_persons ** 2

    def fit_config(self) -> dict[str, float]:
        return {f"fdp_{k}": float(getattr(self, k)) for k in FIT_KEYS}

    @property
    def share_noise_multiplier(self) -> float:
        """One NSO's own noise relative to the sensitivity: what it protects if SecAgg+ were broken."""
        return self.noise_multiplier / math.sqrt(self.min_nsos)


def plan(privacy: PrivacyConfig, sa: SecureAggregationConfig, index: dict, dims: int, rounds: int,
         sigma: float | None = None) -> FederationDP:
    """Rate, noise and grid from the config and the data index; ValueError naming the key if impossible.
    `sigma` given: the plan for that noise multiplier instead of the calibrated one (an NSO checking
    an instruction, see `instruction_problems`)."""
    nsos = index["nsos"]
    persons = {n: int(c["train_persons"]) for n, c in index["windows"].items()}
    threshold = secagg_threshold(sa, len(nsos))
    k_min = privacy.min_nsos or threshold
    if k_min > threshold:
        raise ValueError(f"privacy.min_nsos = {k_min} exceeds the SecAgg+ reconstruction threshold ({threshold} of "
                         f"{len(nsos)} NSOs): a round could complete with fewer NSOs' noise than accounted. Allowed: "
                         f"<= {threshold}, or raise secure_aggregation.reconstruction_threshold")
    if k_min > len(nsos):
        raise ValueError(f"privacy.min_nsos = {k_min} exceeds the {len(nsos)} NSOs")
    q = privacy.person_sample_rate or DEFAULT_RATE
    n_total = sum(persons.values())
    delta = resolve_delta(privacy.delta, {"federation": n_total}, "person")
    sigma = sigma or privacy.noise_multiplier or calibrate(privacy.target_epsilon, delta, q, rounds,
                                                           privacy.accountant)
    largest = q * max(persons.values())
    c = privacy.max_grad_norm
    clipping_range = sa.clipping_range
    if clipping_range == "auto":  # the sum of every sampled person's update, aligned, plus 10 noise SDs
        bound = c * (largest + 4 * math.sqrt(largest) + 1) + 10 * sigma * c * 1.1 / math.sqrt(k_min)
        clipping_range = 2.0 ** math.ceil(math.log2(bound))
    step = grid_step(clipping_range, sa.quantization_range)
    count_scale = 0.0
    if privacy.clip_quantile is not None:  # the count's noise SD, in persons: clip_count_noise * q * N
        count_scale = sigma * effective_clip(c, step, dims + 1) / (privacy.clip_count_noise * q * n_total)
        if count_scale > 2 * c:  # the count coordinate would outgrow the update's grid (clipping_range)
            least = privacy.clip_count_noise * count_scale / (2 * c)
            raise ValueError(f"privacy.clip_count_noise = {privacy.clip_count_noise:g}: at {q * n_total:.0f} expected "
                             f"persons and noise multiplier {sigma:.3g} the count of unclipped persons would need more "
                             f"weight than an update has. Allowed here: >= {least:.3g}, or a fixed clip "
                             "(no privacy.clip_quantile)")
    c_eff = sent_sensitivity(c, count_scale, step, dims)
    return FederationDP(q, sigma, c, c_eff, sigma * c_eff / math.sqrt(k_min), k_min, len(nsos), n_total, q * n_total,
                        delta, privacy.accountant, step, float(clipping_range), privacy.server_optimizer,
                        privacy.server_lr, privacy.server_momentum, privacy.server_tau, count_scale,
                        privacy.clip_quantile, privacy.clip_lr)


def sent_sensitivity(clip: float, count_scale: float, step: float, dims: int) -> float:
    """L2 sensitivity of what an NSO sends to one person: the clipped update and, with adaptive
    clipping, the coordinate count_scale * (unclipped - 1/2) (Andrew et al. 2021: one person moves it
    by count_scale / 2), rounded onto the grid."""
    if count_scale == 0:
        return effective_clip(clip, step, dims)
    return effective_clip(math.hypot(clip, count_scale / 2), step, dims + 1)


def instruction_problems(sent: dict[str, float], privacy: PrivacyConfig, sa: SecureAggregationConfig, index: dict,
                         dims: int, rounds: int) -> list[str]:
    """What is wrong with the server's instruction `sent` (FIT_KEYS -> value), as an NSO sees it from
    public information; empty if it carries at least the accounted noise. Verifying costs one
    epsilon evaluation, not a calibration: the noise multiplier the instruction implies must reach
    the target epsilon (or the configured multiplier), and the rest must be the plan for it."""
    base = plan(privacy, sa, index, dims, rounds, sigma=1.0)  # k_min, rate, clip, delta: not sigma-dependent
    if sent["grid_step"] <= 0 or sent["noise_std"] <= 0:
        return [f"grid_step {sent['grid_step']:g} and noise_std {sent['noise_std']:g} must be positive"]
    sigma = sent["noise_std"] * math.sqrt(base.min_nsos) / sent_sensitivity(base.clip, sent["count_scale"],
                                                                             sent["grid_step"], dims)
    mine = plan(privacy, sa, index, dims, rounds, sigma=sigma)
    bad = []
    if privacy.noise_multiplier is not None and sigma < privacy.noise_multiplier * (1 - 1e-9):
        bad.append(f"noise multiplier {sigma:.6g} < privacy.noise_multiplier {privacy.noise_multiplier:.6g}")
    elif privacy.noise_multiplier is None:
        eps = epsilon_of([(sigma, base.sample_rate, rounds)], base.delta, privacy.accountant)
        if eps > privacy.target_epsilon * 1.01:  # calibration stops within 0.5 % below the target
            bad.append(f"noise_std {sent['noise_std']:.6g} gives epsilon {eps:.4g} over {rounds} rounds > "
                       f"privacy.target_epsilon {privacy.target_epsilon:g}")
    if sent["clip"] > mine.clip * (1 + 1e-9):
        bad.append(f"clip {sent['clip']:.6g} > {mine.clip:.6g}")
    bad += [f"{k} {sent[k]:.6g} != {getattr(mine, k):.6g}" for k in ("sample_rate", "grid_step", "clipping_range",
                                                                                   "count_scale")
            if not math.isclose(sent[k], getattr(mine, k), rel_tol=1e-9)]
    return bad

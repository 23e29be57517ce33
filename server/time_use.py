"""The coordinator's part of time-use estimation: ask every NSO for its estimate, and pool their
noisy totals through SecAgg+ so that it learns only the sums (docs/time_use.md).

After training, the ServerApp sends the final model to every NSO in one or two extra exchanges on
the same Flower legacy path as training: "confusion" (only with a pooled confusion matrix: each NSO
sends its noisy confusion counts, the coordinator sums them and sends the sum back), then
"estimates" (each NSO publishes its national table and sends its pooling vector). Each reply has
weight 1 whatever the NSO's size; under SecAgg+ the sum is the average times the number of NSOs.
Every exchange must reach every NSO: a pooled figure that silently left one out would be wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flwr.app import Context, RecordDict
from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg

from clients.estimation.config import InferenceConfig
from clients.estimation.national import Setting, inference_delta, pooled_rows, setting_for, setting_to_json
from clients.estimation.pooling import CLIP, Layout
from clients.secure_aggregation.config import SecureAggregationConfig
from datasets.atomic import write_json
from datasets.inference_data import read_inference_index

from .config import FederationConfig
from .secure_aggregation import build_workflow
from .strategy import RoundFailed, failure_reason
from .workflow import round_workflow

RELEASE_FILE = "release.json"  # what the epsilon covers: what the NSOs would publish
QUALITY_FILE = "quality.json"  # intervals and diary comparisons: internal, not covered by the epsilon
QUALITY_KEYS = ("ci_low", "ci_high", "minutes_diary_sample")
INTERVAL_KEYS = ("ci_low", "ci_high")


class PoolingStrategy(FedAvg):
    """One round that sends `config` with the model to every NSO and sums their vectors."""

    def __init__(self, n_nsos: int, weights: list[np.ndarray], config: dict, **kw) -> None:
        super().__init__(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n_nsos, min_available_clients=n_nsos,
                         min_evaluate_clients=n_nsos, accept_failures=False,
                         initial_parameters=ndarrays_to_parameters(weights), **kw)
        self.n_nsos, self.extra = n_nsos, config
        self.total: np.ndarray | None = None
        self.metrics: list[dict] = []

    def configure_fit(self, server_round, parameters, client_manager):
        return [(proxy, FitIns(ins.parameters, {**ins.config, **self.extra}))
                for proxy, ins in super().configure_fit(server_round, parameters, client_manager)]

    def aggregate_fit(self, server_round, results, failures):
        if failures or len(results) != self.n_nsos:
            reasons = [failure_reason(f) for f in failures] or [f"{self.n_nsos - len(results)} NSO(s) did not reply"]
            raise RoundFailed(f"time-use estimation ({self.extra['inference_phase']}): {len(results)} of {self.n_nsos} "
                              f"NSOs replied; a pooled figure needs every NSO. Reasons: {'; '.join(reasons)}")
        if any(res.num_examples != 1 for _, res in results):
            raise RoundFailed("time-use estimation: an NSO replied with a data-dependent weight; every NSO sends weight 1")
        vectors = [parameters_to_ndarrays(res.parameters)[0] for _, res in results]
        # under SecAgg+ every result carries the same average; without it, each NSO's own vector
        self.total = np.mean(vectors, axis=0) * len(vectors)
        self.metrics = [dict(res.metrics) for _, res in results]
        return None, {}


def _exchange(grid, context: Context, weights: list[np.ndarray], n_nsos: int, config: dict, layout: Layout,
              sa: SecureAggregationConfig, fed: FederationConfig) -> tuple[dict[str, np.ndarray], list[dict]]:
    """One pooling round; returns the summed blocks and every NSO's metrics."""
    strategy = PoolingStrategy(n_nsos, weights, config)
    fresh = Context(run_id=context.run_id, node_id=context.node_id, node_config=context.node_config,
                    state=RecordDict(), run_config=context.run_config)
    legacy = LegacyContext(context=fresh, config=ServerConfig(num_rounds=1), strategy=strategy)
    secagg = build_workflow(sa, 1.0, CLIP, None, fed.reply_timeout_s) if sa.enabled else None
    round_workflow(secagg, fed.reply_timeout_s or (sa.timeout_s if sa.enabled else None))(grid, legacy)
    if strategy.total is None:
        raise RoundFailed(f"time-use estimation ({config['inference_phase']}): no pooled result")
    return layout.unpack(strategy.total), strategy.metrics


def quantization_bound(layout: Layout, n_nsos: int, sa: SecureAggregationConfig) -> dict[str, float]:
    """Largest error SecAgg+'s rounding can put into each pooled block (original units)."""
    step = 2 * CLIP / sa.quantization_range
    return {name: n_nsos * step * scale for name, _, scale in layout.blocks}


def run_time_use(grid, context: Context, rc: dict, weights: list[np.ndarray], data_dir: str, nsos: list[str],
                 icfg: InferenceConfig, sa: SecureAggregationConfig, fed: FederationConfig, out_dir: str | None) -> dict:
    """Both exchanges; writes RELEASE_FILE (every NSO's published table, the pooled rows, epsilons)
    and QUALITY_FILE (what no epsilon covers)."""
    subdir = str(rc.get("inference-subdir") or "")
    inf_index = read_inference_index(Path(data_dir) / subdir)
    st = setting_for(icfg, inf_index, subdir, inference_delta(icfg, inf_index), int(rc.get("release-number") or 1),
                     grid_step=2 * CLIP / sa.quantization_range)
    if st.pooled_only and not sa.enabled:
        raise RoundFailed("inference.publish = 'pooled' needs SecAgg+: each NSO's sums carry only a share of the noise")
    common = {"task": "estimate", "inference_setting": setting_to_json(st)}
    pooled_confusion = None
    if icfg.confusion == "pooled" and icfg.resolved_estimator != "ppi":  # PPI needs no confusion matrix
        total, _ = _exchange(grid, context, weights, len(nsos), {**common, "inference_phase": "confusion"},
                             st.confusion_layout(), sa, fed)
        pooled_confusion = total["confusion"]
        common["pooled_confusion"] = json.dumps(pooled_confusion.tolist())
    total, metrics = _exchange(grid, context, weights, len(nsos), {**common, "inference_phase": "estimates"},
                               st.estimates_layout(), sa, fed)
    return _write_release(st, total, metrics, pooled_confusion, nsos, sa, out_dir)


def _write_release(st: Setting, total: dict, metrics: list[dict], pooled_confusion, nsos: list[str],
                   sa: SecureAggregationConfig, out_dir: str | None) -> dict:
    by_nso = {m["nso"]: json.loads(m["release"]) for m in metrics}
    national = {n: by_nso[n] for n in nsos if n in by_nso}  # in the data's order, whatever order replies came in
    n_nsos = len(nsos)
    rows, wellbeing = pooled_rows(total, st)
    eps = [v for r in national.values() for v in (r["epsilon_sensor"], r["epsilon_labelled"]) if v is not None]
    release = {
        "setting": json.loads(setting_to_json(st)), "release_number": st.release, "publish": st.cfg.publish,
        "national": national, "pooled": rows,
        "pooled_wellbeing": wellbeing, "pooled_via": {"secaggplus": "secagg+", "ckks": "ckks"}[sa.method] if sa.enabled else "plain sums (secure aggregation off)",
        "pooled_confusion": pooled_confusion.tolist() if pooled_confusion is not None else None,
        "release_epsilon": max(eps) if eps else None, "delta": st.delta,
        "quantization_error_bound": quantization_bound(st.estimates_layout(), n_nsos, sa) if sa.enabled else None,
        "intervals": ("released: read from the noisy sums alone (ppi_release.sampling_from_release), covered by "
                      "the epsilon" if dp_intervals(st) else "internal (quality.json): computed from microdata"),
    }
    if out_dir:
        published, quality = split_release(release, dp_intervals(st))
        write_json(Path(out_dir) / RELEASE_FILE, published)
        write_json(Path(out_dir) / QUALITY_FILE, quality)
    return release


def dp_intervals(st: Setting) -> bool:
    """Whether the intervals are part of the DP release: those of DP PPI++ are post-processing of
    its noisy sums; ACC/PACC's are bootstrapped from microdata, and without DP nothing is covered."""
    return st.cfg.epsilon is not None and st.cfg.resolved_estimator == "ppi"


def split_release(release: dict, intervals_released: bool = False) -> tuple[dict, dict]:
    """(what the release's epsilon covers, the internal quality figures beside it): the diary
    columns are the labelled persons' own minutes; the intervals go with the release only when
    `intervals_released` (dp_intervals)."""
    internal = tuple(k for k in QUALITY_KEYS if not (intervals_released and k in INTERVAL_KEYS))

    def rows(rs: list[dict], keep: bool) -> list[dict]:
        return [{k: v for k, v in r.items() if (k in internal) == keep or k in ("nso", "group", "activity")}
                for r in rs]

    published = {**release, "pooled": rows(release["pooled"], False),
                 "national": {n: {**r, "rows": rows(r["rows"], False)} for n, r in release["national"].items()}}
    quality = {"note": "internal quality figures: NOT covered by the release epsilon, not for publication",
               "pooled": rows(release["pooled"], True),
               "national": {n: rows(r["rows"], True) for n, r in release["national"].items()}}
    return published, quality

"""The ServerApp, on Flower's legacy path (LegacyContext + DefaultWorkflow + a strategy).

That path is the one SecAgg+ plugs into as the fit workflow in flwr 1.41 (DESIGN.md, decision 2),
so the server is built on it with or without secure aggregation.
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch
from flwr.app import Context
from flwr.common import ndarrays_to_parameters
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.workflow import DefaultWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
from flwr.server.workflow.default_workflows import default_evaluate_workflow, default_fit_workflow
from flwr.serverapp import Grid

from clients.model import ModelConfig, build_model, get_weights, set_weights
from clients.privacy import PrivacyConfig
from clients.run_config import section, section_values
from clients.training import TrainingConfig, evaluate
from datasets.prepared import default_data_dir, load_holdout, read_index

from .config import FederationConfig, SecureAggregationConfig
from .records import RoundRecorder
from .secure_aggregation import CheckedSecAggPlusWorkflow, auto_ranges, quantization_error_bound
from .strategy import BudgetSpent, RoundFailed, make_strategy


def make_server_app(run_config: dict | None = None) -> ServerApp:
    """A ServerApp whose run config is `run_config` over Flower's (engines that cannot pass one)."""
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        rc = {**context.run_config, **(run_config or {})}
        try:
            main(grid, context, rc)
        except Exception as exc:
            # `flwr run` exits 0 even when the ServerApp fails: leave the reason where engines look.
            RoundRecorder.failure(str(rc.get("output-dir") or "") or None, f"{type(exc).__name__}: {exc}")
            raise

    return server_app


class TimeoutGrid:
    """A Grid whose send_and_receive waits at most `timeout` seconds (Flower's default workflows
    wait forever for a node that died); replies that never come are then missing, and the strict
    strategy reports or tolerates them."""

    def __init__(self, grid: Grid, timeout: float) -> None:
        self._grid, self._timeout = grid, timeout

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        return self._grid.send_and_receive(messages, timeout=timeout if timeout is not None else self._timeout)


def wait_for_nodes(grid: Grid, expected: int, timeout_s: float) -> None:
    """Fail clearly if fewer NSO nodes than NSOs in the data connect (Flower would wait a day)."""
    deadline = time.monotonic() + timeout_s
    while True:
        n = len(list(grid.get_node_ids()))
        if n >= expected:
            return
        if time.monotonic() > deadline:
            raise RoundFailed(f"only {n} of {expected} NSO nodes connected within {timeout_s:g} s; the data hold "
                              f"{expected} NSOs and every NSO needs its own node (SuperNode)")
        time.sleep(0.2)


def main(grid: Grid, context: Context, rc: dict) -> None:
    seed = int(rc.get("seed", 0))
    fed = section(rc, "federation", FederationConfig)
    mcfg = section(rc, "model", ModelConfig)
    sa = SecureAggregationConfig.from_flat(section_values(rc, "secure_aggregation"))
    data_dir = str(rc.get("data-dir") or "") or default_data_dir()
    index = read_index(data_dir)
    nsos = index["nsos"]
    random.seed(seed)  # Flower's client sampling uses the random module
    np.random.seed(seed)

    model = build_model(mcfg, seed)
    holdout, _ = load_holdout(data_dir)
    recorder = RoundRecorder(str(rc.get("output-dir") or "") or None, fed.rounds,
                             quiet=bool(rc.get("quiet", False)))

    def central_evaluate(server_round, parameters, config):
        set_weights(model, parameters)
        torch.set_num_threads(1)
        m = evaluate(model, holdout, mcfg)
        recorder.central(server_round, m)
        return m["loss"], {k: v for k, v in m.items() if k != "loss"}

    def fit_metrics(results):
        recorder.fit([m for _, m in results])
        return {}

    def evaluate_metrics(results):
        recorder.federated(results)
        return {}

    fit_config = {}
    fit_workflow = None
    if sa.enabled:
        max_weight, clipping_range = auto_ranges(sa, index, section(rc, "training", TrainingConfig),
                                                 section(rc, "privacy", PrivacyConfig))
        fit_config = {"secagg_clipping_range": clipping_range, "secagg_max_weight": max_weight}
        recorder.secagg_settings(max_weight, clipping_range, sa.quantization_range)
        if isinstance(sa.num_shares, int) and sa.num_shares > len(nsos):
            raise RoundFailed(f"secure_aggregation.num_shares = {sa.num_shares} exceeds the {len(nsos)} NSOs")
        fit_workflow = CheckedSecAggPlusWorkflow(
            num_shares=sa.num_shares, reconstruction_threshold=sa.reconstruction_threshold, max_weight=max_weight,
            clipping_range=clipping_range, quantization_range=sa.quantization_range, timeout=sa.timeout_s,
            on_round=recorder.secagg_round)

    def on_aggregate(server_round, results):
        if sa.enabled:
            recorder.secagg_bound(quantization_error_bound([r.num_examples for r in results if r.num_examples > 0],
                                                           max_weight, clipping_range, sa.quantization_range))

    strategy = make_strategy(
        fed, len(nsos), ndarrays_to_parameters(get_weights(model)),
        tolerate_dropouts=sa.enabled, on_dropped=recorder.dropped, on_aggregate=on_aggregate,
        evaluate_fn=central_evaluate,
        on_fit_config_fn=lambda r: {"server_round": r, **fit_config},
        on_evaluate_config_fn=lambda r: {"server_round": r},
        fit_metrics_aggregation_fn=fit_metrics,
        evaluate_metrics_aggregation_fn=evaluate_metrics,
    )
    wait_for_nodes(grid, len(nsos), fed.node_wait_s)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=fed.rounds), strategy=strategy)
    reply_timeout = fed.reply_timeout_s or (sa.timeout_s if sa.enabled else None)
    fit = fit_workflow or default_fit_workflow
    evaluate_wf = default_evaluate_workflow
    if reply_timeout is not None:
        if fit_workflow is None:
            fit = lambda g, c: default_fit_workflow(TimeoutGrid(g, reply_timeout), c)  # noqa: E731
        evaluate_wf = lambda g, c: default_evaluate_workflow(TimeoutGrid(g, reply_timeout), c)  # noqa: E731
    try:
        DefaultWorkflow(fit_workflow=fit, evaluate_workflow=evaluate_wf)(grid, legacy)
    except BudgetSpent as stop:
        recorder.stopped(str(stop))
    recorder.save_model(legacy.state.array_records[MAIN_PARAMS_RECORD].to_numpy_ndarrays())


app = make_server_app()

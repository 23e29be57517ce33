"""The ServerApp, on Flower's legacy path (LegacyContext + DefaultWorkflow + a strategy).

That path is the one SecAgg+ plugs into as the fit workflow in flwr 1.41 (DESIGN.md, decision 2),
so the server is built on it with or without secure aggregation. The server also fixes the run's
one privacy delta from the data index and sends it to every NSO with the training instructions.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from flwr.app import Context
from flwr.common import ndarrays_to_parameters
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
from flwr.serverapp import Grid

from clients.estimation.config import InferenceConfig
from clients.model import ModelConfig, get_weights, model_for_index, set_weights
from clients.privacy.federation_plan import FederationDP, plan as plan_federation_dp
from clients.privacy.accounting import DELTA_KEY, resolve_delta, units_per_nso
from clients.privacy.config import PrivacyConfig, check_federation_scope
from clients.run_config import section
from clients.secure_aggregation.config import SecureAggregationConfig
from clients.training import TrainingConfig, evaluate
from datasets.errors import UserError
from datasets.prepared import load_holdout, read_index
from datasets.synthetic.default_data import default_data_dir

from . import dp_fedavg
from .config import FederationConfig
from .message_log import LoggingGrid
from .records import RoundRecorder
from .secure_aggregation import SecAggPlan, plan_secure_aggregation
from .strategy import BudgetSpent, make_strategy
from .time_use import run_time_use
from .workflow import round_workflow, wait_for_nodes


def make_server_app(run_config: dict | None = None) -> ServerApp:
    """A ServerApp whose run config is `run_config` over Flower's (engines that cannot pass one)."""
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        rc = {**context.run_config, **(run_config or {})}
        if rc.get("message-log"):  # every reply, from the server's seat (server/message_log.py)
            grid = LoggingGrid(grid, Path(str(rc["message-log"])))
        try:
            main(grid, context, rc)
        except Exception as exc:
            # `flwr run` exits 0 even when the ServerApp fails: leave the reason where engines look.
            RoundRecorder.failure(str(rc.get("output-dir") or "") or None, f"{type(exc).__name__}: {exc}")
            raise

    return server_app


def fit_config(rc: dict, index: dict, secagg: SecAggPlan | None, fdp: FederationDP | None) -> dict:
    """What every NSO receives with its training instructions, besides the round number."""
    out = dict(secagg.fit_config) if secagg else {}
    privacy = section(rc, "privacy", PrivacyConfig)
    if fdp is not None:
        out.update(fdp.fit_config())
    elif privacy.enabled:
        out[DELTA_KEY] = resolve_delta(privacy.delta, units_per_nso(index, privacy.unit), privacy.unit)
    return out


def federation_plan(privacy: PrivacyConfig, sa: SecureAggregationConfig, fed: FederationConfig, index: dict,
                    model: torch.nn.Module) -> FederationDP | None:
    """The federation scope's noise and grid (None in the nso scope); refused without SecAgg+."""
    if not privacy.federation:
        return None
    try:
        check_federation_scope(privacy, sa.enabled, fed.strategy, fed.fraction_fit)
        return plan_federation_dp(privacy, sa, index, sum(p.numel() for p in model.parameters()), fed.rounds)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def main(grid: Grid, context: Context, rc: dict) -> None:
    """Train (unless `estimate-only` names a released model.npz), then, when [inference] asks for
    it, estimate time use with the final model (server/time_use.py)."""
    seed = int(rc.get("seed", 0))
    fed = section(rc, "federation", FederationConfig)
    sa = section(rc, "secure_aggregation", SecureAggregationConfig)
    data_dir = str(rc.get("data-dir") or "") or default_data_dir()
    index = read_index(data_dir)
    random.seed(seed)  # Flower's client sampling uses the random module
    np.random.seed(seed)
    out_dir = str(rc.get("output-dir") or "") or None
    if rc.get("estimate-only"):
        with np.load(str(rc["estimate-only"])) as z:
            weights = [z[f"arr_{i}"] for i in range(len(z.files))]
    else:
        weights = train(grid, context, rc, fed, sa, data_dir, index)
    icfg = section(rc, "inference", InferenceConfig)
    if icfg.enabled:
        wait_for_nodes(grid, len(index["nsos"]), fed.node_wait_s)
        run_time_use(grid, context, rc, weights, data_dir, index["nsos"], icfg, sa, fed, out_dir)


def _audited(strategy, rc: dict):
    """Keep the aggregates of every round when an audit asks for the server's view."""
    if int(rc.get("audit-direction-canaries") or 0):
        strategy.view = []
    return strategy


def train(grid: Grid, context: Context, rc: dict, fed: FederationConfig, sa: SecureAggregationConfig, data_dir: str,
          index: dict) -> list[np.ndarray]:
    """Every round of federated training; returns (and saves) the released model."""
    seed = int(rc.get("seed", 0))
    mcfg = section(rc, "model", ModelConfig)

    model = model_for_index(mcfg, seed, index)
    holdout, _ = load_holdout(data_dir)
    recorder = RoundRecorder(str(rc.get("output-dir") or "") or None, fed.rounds, quiet=bool(rc.get("quiet", False)),
                             randomness=str(rc.get("randomness") or "reproducible"))

    def central_evaluate(server_round, parameters, config):
        if not strategy.evaluates(server_round):
            return None  # federation.evaluate_every
        set_weights(model, parameters)
        torch.set_num_threads(1)
        m = evaluate(model, holdout, mcfg, index["labels"], index["wellbeing_range"])
        recorder.central(server_round, m)
        return m["loss"], {k: v for k, v in m.items() if k != "loss"}

    privacy = section(rc, "privacy", PrivacyConfig)
    fdp = federation_plan(privacy, sa, fed, index, model)
    secagg = plan_secure_aggregation(sa, index, section(rc, "training", TrainingConfig), privacy, recorder,
                                     (1.0, fdp.clipping_range) if fdp else None, fed.reply_timeout_s) if sa.enabled else None
    per_round = fit_config(rc, index, secagg, fdp)
    factory = (lambda **kw: _audited(dp_fedavg.DPFedAvg(fdp, privacy.budget, recorder, **kw), rc)) if fdp else None
    strategy = make_strategy(
        fed, len(index["nsos"]), ndarrays_to_parameters(get_weights(model)),
        tolerate_dropouts=sa.enabled, on_dropped=recorder.dropped, factory=factory,
        on_aggregate=secagg.on_aggregate if secagg else None, evaluate_fn=central_evaluate,
        on_fit_config_fn=lambda r: {"server_round": r, **per_round},
        on_evaluate_config_fn=lambda r: {"server_round": r},
        fit_metrics_aggregation_fn=lambda results: recorder.fit([m for _, m in results]) or {},
        evaluate_metrics_aggregation_fn=lambda results: recorder.federated(results) or {},
    )
    strategy.on_skipped_evaluation = lambda r: recorder.finish_round()
    wait_for_nodes(grid, len(index["nsos"]), fed.node_wait_s)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=fed.rounds), strategy=strategy)
    reply_timeout = fed.reply_timeout_s or (sa.timeout_s if sa.enabled else None)
    try:
        round_workflow(secagg.workflow if secagg else None, reply_timeout)(grid, legacy)
    except BudgetSpent as stop:
        recorder.stopped(str(stop))
    weights = legacy.state.array_records[MAIN_PARAMS_RECORD].to_numpy_ndarrays()
    recorder.save_model(weights)
    if getattr(strategy, "view", None) and recorder.path:  # an audit: what the server saw, round by round
        np.save(recorder.path.with_name("server_view.npy"), np.stack(strategy.view))
    return weights


app = make_server_app()

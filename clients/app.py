"""The NSO ClientApp. One node = one NSO; it trains and evaluates only on its own persons.

Legacy NumPyClient via client_fn: SecAgg+ in flwr 1.41 needs replies in the fit format
(see ../shared/DESIGN.md, decision 2).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from flwr.app import Context
from flwr.client import ClientApp, NumPyClient

from datasets.prepared import default_data_dir, load_partition, read_index

from .model import ModelConfig, build_model, get_weights, set_weights
from .run_config import section
from .training import TrainingConfig, evaluate, train


def round_seed(seed: int, nso: str, server_round: int) -> int:
    """Distinct, reproducible stream per (experiment seed, NSO, round)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(nso.encode()), server_round]).generate_state(1)[0])


def resolve_nso(context: Context, rc: dict) -> tuple[str, str]:
    """(data directory, NSO code) of this node: named by its node config, or by partition id."""
    nc = context.node_config
    data_dir = str(nc.get("data-dir") or rc.get("data-dir") or "") or default_data_dir()
    if "nso" in nc:
        return data_dir, str(nc["nso"])
    nsos = read_index(data_dir)["nsos"]
    pid = int(nc.get("partition-id", 0))
    if not 0 <= pid < len(nsos):
        raise ValueError(f"partition-id {pid} out of range: the data hold {len(nsos)} NSOs {nsos}")
    return data_dir, nsos[pid]


class NSOClient(NumPyClient):
    def __init__(self, context: Context, rc: dict) -> None:
        self.seed = int(rc.get("seed", 0))
        self.model_cfg = section(rc, "model", ModelConfig)
        self.train_cfg = section(rc, "training", TrainingConfig)
        data_dir, self.nso = resolve_nso(context, rc)
        self.data = load_partition(data_dir, self.nso)
        self.model = build_model(self.model_cfg, self.seed)

    def fit(self, parameters, config):
        set_weights(self.model, parameters)
        server_round = int(config.get("server_round", 0))
        torch.set_num_threads(1)
        stats = train(self.model, self.data.train, self.train_cfg, self.model_cfg,
                      round_seed(self.seed, self.nso, server_round), float(config.get("proximal_mu", 0.0)))
        return get_weights(self.model), len(self.data.train), {"nso": self.nso, **stats}

    def evaluate(self, parameters, config):
        set_weights(self.model, parameters)
        m = evaluate(self.model, self.data.test, self.model_cfg)
        return m["loss"], len(self.data.test), {"nso": self.nso, "accuracy": m["accuracy"],
                                                "macro_f1": m["macro_f1"], "wellbeing_mae": m["wellbeing_mae"]}


def make_client_app(run_config: dict | None = None) -> ClientApp:
    """A ClientApp whose run config is `run_config` over Flower's (engines that cannot pass one)."""

    def client_fn(context: Context):
        return NSOClient(context, {**context.run_config, **(run_config or {})}).to_client()

    return ClientApp(client_fn=client_fn)


app = make_client_app()

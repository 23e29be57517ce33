"""The NSO client: one node = one NSO; it trains and evaluates only on its own persons.

Legacy NumPyClient (built by clients/app.py's client_fn): SecAgg+ in flwr 1.41 needs replies in the
fit format (see ../shared/DESIGN.md, decision 2). This module holds every heavy import (torch,
Opacus, the data), so that messages that never reach the client (SecAgg+'s key and unmask stages)
do not pay for them.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import torch
from flwr.app import Context
from flwr.client import NumPyClient

from datasets.errors import UserError
from datasets.prepared import load_partition, read_index
from datasets.synthetic.default_data import default_data_dir

from .local_log import LocalLog
from .model import ModelConfig, build_model, get_weights, set_weights
from .privacy.adaptive_clip import checked_scale, sent_vectors
from .privacy.accounting import DELTA_KEY, PrivacyLedger, calibrate
from .privacy.audit_canaries import add_canaries
from .privacy.config import PrivacyConfig
from .privacy.dp_sgd import dp_train
from .privacy.federation_plan import FIT_KEYS, instruction_problems
from .privacy.noise_share import noisy_share
from .privacy.person_updates import clipped_update_sum
from .privacy.randomness import KEY as RANDOMNESS_KEY, node_randomness
from .privacy.sampling import sample_rate, steps_per_round, units
from .run_config import THREADS_KEY, section
from .secure_aggregation.config import SecureAggregationConfig
from .secure_aggregation.mod import clipped_count
from .training import TrainingConfig, evaluate, torch_threads, train



# Functions of the NSO's data that no epsilon covers: kept in the NSO's local log in a DP run.
PRIVATE_FIT = ("train_loss", "mean_batch_units", "clipped_share", "secagg_clipped")
PRIVATE_EVALUATE = ("loss", "examples", "accuracy", "macro_f1", "wellbeing_mae")


def round_seed(seed: int, nso: str, server_round: int) -> int:
    """Distinct, reproducible stream per (experiment seed, NSO, round), for training without DP only:
    DP noise and sampling come from the node's Randomness (clients/privacy/randomness.py)."""
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
        self.privacy = section(rc, "privacy", PrivacyConfig)
        self.rounds = int(rc.get("federation.rounds", 1))
        self.audit_canaries = int(rc.get("audit-direction-canaries") or 0)
        self.audit_seed = int(rc.get("audit-seed") or 0)
        self.data_dir, self.nso = resolve_nso(context, rc)
        self.threads = int(context.node_config.get(THREADS_KEY, 1))
        self.data = load_partition(self.data_dir, self.nso)
        self.randomness = node_randomness(str(rc.get(RANDOMNESS_KEY) or "reproducible"), context.node_config,
                                          self.seed, self.nso)
        self.model = build_model(self.model_cfg, self.seed, self.data.n_features, len(self.data.labels))
        self.context = context
        self.rc = rc
        # A DP run sends only public numbers; what depends on the data stays with the NSO.
        self.local_log = LocalLog(context, rc, self.nso) if self.privacy.enabled else None

    def fit(self, parameters, config):
        set_weights(self.model, parameters)
        server_round = int(config.get("server_round", 0))
        seed = round_seed(self.seed, self.nso, server_round)
        torch.set_num_threads(1)
        if config.get("task") == "estimate":
            return self._estimate(config)
        if self.privacy.federation:
            return self._federation_fit(server_round, config)
        if self.privacy.enabled:
            return self._dp_fit(parameters, server_round, config)
        stats = train(self.model, self.data.train, self.train_cfg, self.model_cfg, seed,
                      float(config.get("proximal_mu", 0.0)))
        return self._reply(parameters, len(self.data.train), {"nso": self.nso, **stats}, config)

    def _reply(self, global_weights, num_examples: int, metrics: dict, config):
        """Send the model delta (new - global), not weights: SecAgg+ clips and quantizes values to
        +-clipping_range, which fits small deltas far better than weights; the strategy adds the
        averaged delta to the global model."""
        delta = [new - old for new, old in zip(get_weights(self.model), global_weights)]
        if "secagg_clipping_range" in config:
            metrics["secagg_clipped"] = clipped_count(delta, num_examples, float(config["secagg_max_weight"]),
                                                      float(config["secagg_clipping_range"]))
        return delta, num_examples, self._public(int(config.get("server_round", 0)), "fit", metrics, PRIVATE_FIT)

    def _public(self, server_round: int, phase: str, metrics: dict, private: tuple[str, ...]) -> dict:
        """In a DP run, move the data-dependent `private` keys to the NSO's local log."""
        if self.local_log is None:
            return metrics
        self.local_log.write(server_round, phase, {k: metrics[k] for k in private if k in metrics})
        return {k: v for k, v in metrics.items() if k not in private}

    def _dp_fit(self, parameters, server_round: int, config):
        """One round of DP-SGD, accounted in the node's persistent ledger; never past the budget."""
        p, data = self.privacy, self.data.train
        n_units = units(data, p.unit)
        delta = self._delta(config, n_units)
        q = sample_rate(p, self.train_cfg, data)
        steps = steps_per_round(q, self.train_cfg.local_epochs, p.steps_per_round)
        ledger = PrivacyLedger(self.context.state)
        if ledger.noise_multiplier is None:
            ledger.noise_multiplier = p.noise_multiplier or calibrate(
                p.target_epsilon, delta, q, steps * self.rounds, p.accountant)
        sigma = ledger.noise_multiplier
        spent = ledger.epsilon(delta, p.accountant)
        after = ledger.epsilon_after(sigma, q, steps, delta, p.accountant)
        report = {"nso": self.nso, "noise_multiplier": sigma, "sample_rate": q, "delta": delta,
                  "units": n_units, "max_grad_norm": p.max_grad_norm}
        if p.budget is not None and after > p.budget * (1 + 1e-9):
            # The next round would overspend: stop training, send back the global model unchanged.
            zero = [np.zeros_like(w) for w in parameters]
            return zero, 0, {**report, "epsilon": spent, "steps": 0, "budget_exhausted": 1,
                             "rounds_accounted": len(ledger.history)}
        stats = dp_train(self.model, data, self.train_cfg, self.model_cfg, p.unit, sigma, p.max_grad_norm, q,
                         steps, (self.randomness.seed("sample", server_round), self.randomness.seed("noise", server_round)))
        ledger.add(sigma, q, steps)
        # "steps" is what the ledger accounted (the history recomputes the epsilon from it)
        return self._reply(parameters, len(data), {**report, **stats, "steps": steps, "epsilon": after,
                                                   "budget_exhausted": 0,
                                                   "rounds_accounted": len(ledger.history)}, config)

    def _federation_fit(self, server_round: int, config):
        """DP-FedAvg with distributed noise (server/dp_fedavg.py): Poisson-sample persons at the
        server's rate, sum their clipped updates, add this NSO's noise share on the SecAgg+ grid.
        The reply's weight is 1 whatever the data, and its metrics say nothing about the persons."""
        missing = [f"fdp_{k}" for k in FIT_KEYS if f"fdp_{k}" not in config]
        if missing:
            raise UserError(f"the server sent no {missing} with the training instructions; privacy.scope = "
                            "'federation' needs the ServerApp of the same nso-ppml version")
        self._check_plan(server_round, config)
        rng = self.randomness.generator("federation", server_round)  # sample, rounding offsets, noise share
        data = self.data.train
        sampled = np.nonzero(rng.random(units(data, "person")) < float(config["fdp_sample_rate"]))[0]
        windows = self.randomness.generator("windows", server_round) if self.privacy.local_batch else None
        try:
            scale = checked_scale(config.get("fdp_clip_scale", 1.0))
        except ValueError as exc:
            raise UserError(f"NSO {self.nso} refuses round {server_round}: {exc}") from None
        with torch_threads(self.threads):
            sums, stats = clipped_update_sum(self.model, data, sampled, self.privacy.local_steps,
                                             self.privacy.local_lr, float(config["fdp_clip"]) * scale,
                                             self.model_cfg.wellbeing_weight, local_batch=self.privacy.local_batch,
                                             rng=windows)
        sums = sent_vectors(sums, stats["persons"], stats["clipped"], scale, float(config["fdp_count_scale"]))
        if self.audit_canaries:  # an audit's update-direction canaries (clients/privacy/audit_canaries.py)
            sums = add_canaries(sums, self.audit_seed, self.nso, self.audit_canaries,
                                float(config["fdp_sample_rate"]), float(config["fdp_clip"]),
                                self.randomness.generator("canaries", server_round))
        share = noisy_share(sums, float(config["fdp_noise_std"]), float(config["fdp_grid_step"]),
                            float(config["fdp_clipping_range"]), rng)
        return share, 1, {"nso": self.nso, "noise_std": float(config["fdp_noise_std"])}

    def _check_plan(self, server_round: int, config) -> None:
        """Recompute the noise plan from public information (the config, the data index) and refuse an
        instruction with less noise, a higher sampling rate, a larger clip or another grid. Checked
        once per node and run (the node state keeps the verdict for the instruction it saw)."""
        from flwr.app import ConfigRecord

        sent = {k: float(config[f"fdp_{k}"]) for k in FIT_KEYS}
        tag = json.dumps(sent)
        rec = self.context.state.config_records.get("federation-plan-checked")
        if rec is not None and str(rec["instruction"]) == tag:
            return
        sa = section(self.rc, "secure_aggregation", SecureAggregationConfig)
        bad = instruction_problems(sent, self.privacy, sa, read_index(self.data_dir),
                                   sum(p.numel() for p in self.model.parameters()), self.rounds)
        if bad:
            raise UserError(f"NSO {self.nso} refuses round {server_round}: the server's instruction differs from the noise "
                            f"plan the NSO recomputed from the config and the data index ({'; '.join(bad)}); it would "
                            "carry less noise than accounted")
        self.context.state.config_records["federation-plan-checked"] = ConfigRecord({"instruction": tag})

    def _estimate(self, config):
        """Time-use estimation with the model just received (clients/estimation/national.py): the
        noisy confusion counts, or the national table (published by this NSO, here collected as a
        metric) and the vector for the pooled figures; weight 1, whatever the NSO's size."""
        from .estimation.national import estimate_national, setting_from_json

        st = setting_from_json(str(config["inference_setting"]))
        own = None if st.cfg.resolved_estimator == "ppi" else self._own_confusion(st)  # PPI needs no confusion matrix
        if config["inference_phase"] == "confusion":
            return [st.confusion_layout().pack({"confusion": own[0]})], 1, {"nso": self.nso}
        pooled = np.array(json.loads(str(config["pooled_confusion"]))) if "pooled_confusion" in config else None
        nat = estimate_national(self.model, self.data_dir, self.nso, st, self.seed, self.randomness, own, pooled)
        release = {"rows": nat.rows, "wellbeing": nat.wellbeing, "epsilon_sensor": nat.epsilon_sensor,
                   "epsilon_labelled": nat.epsilon_labelled}
        layout = st.estimates_layout()
        if st.pooled_only:  # no national table; its exact sums leave only with its noise share, on the grid
            from .estimation.pooled_release import pack_share

            vector = pack_share(st, layout, nat.pooling, self.randomness.generator("time-use-pooled-share", st.release))
        else:
            vector = layout.pack(nat.pooling)
        return [vector], 1, {"nso": self.nso, "release": json.dumps(release)}

    def _own_confusion(self, st):
        """This NSO's noisy confusion counts, drawn once per estimate and kept in the node state, so
        that the estimates phase reuses what the confusion phase released (a second draw would be a
        second, unaccounted release)."""
        from flwr.app import ConfigRecord

        from .estimation.national import noisy_confusion

        key, tag = "time-use-confusion", json.dumps([st.cfg.model_dump(mode="json"), st.delta, st.release])
        rec = self.context.state.config_records.get(key)
        counts, lab = noisy_confusion(self.model, self.data_dir, self.nso, st, self.randomness)
        if rec is not None and str(rec["tag"]) == tag:
            counts = np.array(json.loads(str(rec["counts"])))
        else:
            self.context.state.config_records[key] = ConfigRecord({"tag": tag, "counts": json.dumps(counts.tolist())})
        return counts, lab

    def _delta(self, config, n_units: int) -> float:
        """The run's one delta, sent by the server (clients/privacy/accounting.resolve_delta), so
        every NSO accounts with the same delta under every engine, `flwr run .` included."""
        if DELTA_KEY not in config:
            raise UserError("the server sent no privacy delta with the training instructions; the ServerApp and "
                            "ClientApp come from different versions of nso-ppml")
        delta = float(config[DELTA_KEY])
        if delta >= 1.0 / max(n_units, 1):
            raise UserError(f"privacy.delta = {delta:g} is not below 1/n = {1 / n_units:g} for NSO {self.nso} "
                            f"({n_units} {self.privacy.unit}s)")
        return delta

    def evaluate(self, parameters, config):
        """The NSO's test persons (the validation persons of tuning). In a DP run the result stays in
        the local log and the server gets a NaN loss: it is not DP, so it is not the server's."""
        set_weights(self.model, parameters)
        m = evaluate(self.model, self.data.test, self.model_cfg, self.data.labels, self.data.wellbeing_range)
        metrics = {"nso": self.nso, "loss": m["loss"], "examples": len(self.data.test), "accuracy": m["accuracy"],
                   "macro_f1": m["macro_f1"], "wellbeing_mae": m["wellbeing_mae"]}
        public = self._public(int(config.get("server_round", 0)), "evaluate", metrics, PRIVATE_EVALUATE)
        loss = public.pop("loss", float("nan"))
        public.pop("examples", None)
        return loss, len(self.data.test), public

"""The `centralized` engine: the same model on the pooled training persons of all NSOs, the
ceiling a federation is measured against - non-private, or with `[privacy]` the pooled-data DP
ceiling: one trusted curator running DP-SGD (clients/privacy/dp_sgd.py) on the pooled persons at the
run's epsilon and delta, with the privacy unit of the config (issue 21). It separates what privacy
costs from what federation costs.

One "round" = training.local_passes over the pooled data (DP: local_epochs passes of noisy steps), so rounds compare
with federated runs. Under DP the curator samples persons (or records) at the nso scope's rate -
`privacy.person_batch_size` persons per step (`person_sample_rate` when given, except in a
federation-scope config, where it is a per-round rate of another algorithm) - calibrates sigma to
the target over all rounds, accounts every round in a ledger, and stops at the budget, as an NSO does.
"""

from __future__ import annotations

import numpy as np
import torch

from clients.model import get_weights, model_for_index
from clients.privacy.accounting import PrivacyLedger, calibrate
from clients.privacy.config import PrivacyConfig
from clients.privacy.dp_sgd import dp_train
from clients.privacy.randomness import node_randomness
from clients.privacy.sampling import sample_rate, steps_per_round, units
from clients.training import evaluate, train
from datasets.errors import UserError
from datasets.prepared import Arrays, load_holdout, load_partition, read_index
from server.records import RoundRecorder

from .base import POOLED, EngineRun



def pooled_arrays(parts) -> Arrays:
    """All NSOs' training windows, person indices made unique across NSOs (a person is a privacy unit)."""
    offsets = np.cumsum([0] + [int(p.train.person.max()) + 1 if len(p.train) else 0 for p in parts[:-1]])
    return Arrays(*(np.concatenate([getattr(p.train, f) for p in parts]) for f in ("x", "y", "wellbeing")),
                  np.concatenate([p.train.person + o for p, o in zip(parts, offsets)]))


def curator_privacy(privacy: PrivacyConfig) -> PrivacyConfig:
    """The DP-SGD settings of the curator: the nso scope's, on pooled data."""
    if privacy.scope == "federation":
        return privacy.model_copy(update={"scope": "nso", "person_sample_rate": None})
    return privacy


class CentralizedEngine:
    def run(self, job: EngineRun) -> None:
        cfg = job.cfg
        parts = [load_partition(job.data_dir, n) for n in job.nsos]
        pooled = pooled_arrays(parts)
        if len(pooled) == 0:
            raise UserError("no training windows in the data")
        holdout, _ = load_holdout(job.data_dir)
        index = read_index(job.data_dir)
        model = model_for_index(cfg.model, cfg.seed, index)
        recorder = RoundRecorder(str(job.run_dir), cfg.federation.rounds, quiet=job.quiet)
        torch.set_num_threads(1)
        round_fit = self._dp_rounds(job, model, pooled) if cfg.privacy.enabled else None

        def evaluate_on(data: Arrays) -> dict:
            return evaluate(model, data, cfg.model, index["labels"], index["wellbeing_range"])

        recorder.central(0, evaluate_on(holdout))
        for r in range(1, cfg.federation.rounds + 1):
            stats = round_fit(r) if round_fit else train(model, pooled, cfg.training, cfg.model, cfg.seed * 100_003 + r)
            recorder.current["round"] = r
            recorder.fit([{"nso": POOLED, **stats}])
            recorder.central(r, evaluate_on(holdout))
            recorder.federated([(len(p.test), {"nso": p.nso, **evaluate_on(p.test)}) for p in parts])
        recorder.save_model(get_weights(model))  # the ceiling's model too: audits and estimates read it

    @staticmethod
    def _dp_rounds(job: EngineRun, model, pooled: Arrays):
        """One round of the curator's DP-SGD per call, accounted; the reply keys an NSO's DP fit
        reports, so the privacy summary reads the same history."""
        from flwr.app import RecordDict

        cfg = job.cfg
        p = curator_privacy(cfg.privacy)
        q = sample_rate(p, cfg.training, pooled)
        steps = steps_per_round(q, cfg.training.local_epochs, p.steps_per_round)
        sigma = p.noise_multiplier or calibrate(p.target_epsilon, p.delta, q, steps * cfg.federation.rounds, p.accountant)
        ledger = PrivacyLedger(RecordDict())
        noise = node_randomness(cfg.randomness_mode, {}, cfg.seed, POOLED)
        report = {"noise_multiplier": sigma, "sample_rate": q, "delta": p.delta, "units": units(pooled, p.unit),
                  "max_grad_norm": p.max_grad_norm}

        def fit(r: int) -> dict:
            after = ledger.epsilon_after(sigma, q, steps, p.delta, p.accountant)
            if p.budget is not None and after > p.budget * (1 + 1e-9):
                return {**report, "epsilon": ledger.epsilon(p.delta, p.accountant), "steps": 0, "budget_exhausted": 1,
                        "rounds_accounted": len(ledger.history)}
            stats = dp_train(model, pooled, cfg.training, cfg.model, p.unit, sigma, p.max_grad_norm, q, steps,
                             (noise.seed("sample", r), noise.seed("noise", r)))
            ledger.add(sigma, q, steps)
            return {**report, **stats, "steps": steps, "epsilon": after, "budget_exhausted": 0,
                    "rounds_accounted": len(ledger.history)}

        return fit

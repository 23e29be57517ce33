"""The `centralized` engine: the same model on the pooled training persons of all NSOs, the
non-private ceiling a federation is measured against.

One "round" = local_epochs passes over the pooled data, so rounds compare with federated runs.
"""

from __future__ import annotations

import numpy as np
import torch

from clients.model import get_weights, model_for_index
from clients.training import evaluate, train
from datasets.errors import UserError
from datasets.prepared import Arrays, load_holdout, load_partition, read_index
from server.records import RoundRecorder

from .base import EngineRun


class CentralizedEngine:
    def run(self, job: EngineRun) -> None:
        cfg = job.cfg
        parts = [load_partition(job.data_dir, n) for n in job.nsos]
        pooled = Arrays(*(np.concatenate([getattr(p.train, f) for p in parts])
                          for f in ("x", "y", "wellbeing", "person")))
        if len(pooled) == 0:
            raise UserError("no training windows in the data")
        holdout, _ = load_holdout(job.data_dir)
        index = read_index(job.data_dir)
        model = model_for_index(cfg.model, cfg.seed, index)
        recorder = RoundRecorder(str(job.run_dir), cfg.federation.rounds, quiet=job.quiet)
        torch.set_num_threads(1)

        def evaluate_on(data: Arrays) -> dict:
            return evaluate(model, data, cfg.model, index["labels"], index["wellbeing_range"])

        recorder.central(0, evaluate_on(holdout))
        for r in range(1, cfg.federation.rounds + 1):
            stats = train(model, pooled, cfg.training, cfg.model, cfg.seed * 100_003 + r)
            recorder.current["round"] = r
            recorder.fit([{"nso": "pooled", **stats}])
            recorder.central(r, evaluate_on(holdout))
            recorder.federated([(len(p.test), {"nso": p.nso, **evaluate_on(p.test)}) for p in parts])
        recorder.save_model(get_weights(model))  # the ceiling's model too: audits and estimates read it

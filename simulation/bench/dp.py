"""`ppml bench dp`: one epoch of DP-SGD (record and person unit) against non-private training."""

from __future__ import annotations

import tempfile
import time

import torch

from clients.model import ModelConfig, build_model
from clients.privacy.config import PrivacyConfig
from clients.privacy.dp_sgd import dp_train
from clients.privacy.sampling import sample_rate, steps_per_round
from clients.training import TrainingConfig, train
from datasets.prepared import load_partition, prepare
from datasets.synthetic.generator import GeneratorSettings, generate

DP_TARGET_RATIO = 2.0


def bench_dp(repeats: int = 3) -> dict:
    """One epoch of local training on the largest default NSO: non-private vs DP-SGD (record and
    person unit), same model, data, batch size and thread count, interleaved; best of `repeats`."""
    windows = generate(GeneratorSettings(nsos=["DE"])).windows
    mcfg, tcfg = ModelConfig(), TrainingConfig()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"non_private": [], "dp_record": [], "dp_person": []}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(windows, tmp, 0, 0.2, 0.1)
        part = load_partition(tmp, "DE")
        data = part.train
        train(build_model(mcfg, 0, part.n_features, len(part.labels)), data, tcfg, mcfg, 0)  # warm-up
        for _ in range(repeats):
            model = build_model(mcfg, 0, part.n_features, len(part.labels))
            start = time.perf_counter()
            train(model, data, tcfg, mcfg, 0)
            times["non_private"].append(time.perf_counter() - start)
            for unit in ("record", "person"):
                pcfg = PrivacyConfig(enabled=True, unit=unit, noise_multiplier=1.0)
                q = sample_rate(pcfg, tcfg, data)
                model = build_model(mcfg, 0, part.n_features, len(part.labels))
                start = time.perf_counter()
                dp_train(model, data, tcfg, mcfg, unit, 1.0, 1.0, q, steps_per_round(q, 1), (0, 1))
                times[f"dp_{unit}"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    ratios = {k: round(best[k] / best["non_private"], 3) for k in ("dp_record", "dp_person")}
    return {"benchmark": "dp", "nso": "DE", "train_windows": len(data), "batch_size": tcfg.batch_size,
            "epoch_s": {k: round(v, 4) for k, v in best.items()}, "ratio": ratios, "target_ratio": DP_TARGET_RATIO,
            "meets_target": bool(max(ratios.values()) <= DP_TARGET_RATIO), "runs_s": times}

"""Every time-use release of a model goes on its ledger (clients/estimation/release_ledger.py):
planned (numbered, budget checked) before any work, recorded when it is written."""

from __future__ import annotations

from pathlib import Path

from clients.estimation import release_ledger
from clients.estimation.national import inference_delta
from clients.estimation.pooled_release import checked_honest
from clients.estimation.release import noise_multiplier
from datasets.inference_data import read_inference_index

from ..config import ExperimentConfig


def plan_release(cfg: ExperimentConfig, inf_dir: Path, ledger_dir: Path) -> int:
    """This release's number on the model's ledger; UserError if the budget would be overspent, the
    delta is not below 1/n or the noise shares count on more NSOs than there are."""
    index = read_inference_index(inf_dir)
    delta = inference_delta(cfg.inference, index)
    checked_honest(cfg.inference.honest_nsos, len(index["counts"]))
    releases = release_ledger.read(ledger_dir)
    release_ledger.check_budget(releases, noise_multiplier(cfg.inference.epsilon, delta), delta, cfg.inference.budget)
    return len(releases) + 1


def record_release(cfg: ExperimentConfig, ledger_dir: Path, out_dir: Path, block: dict) -> dict:
    """Put the release just written in `out_dir` on the ledger; the new total (summary's `ledger`)."""
    z = noise_multiplier(cfg.inference.epsilon, block["delta"])
    return release_ledger.record(ledger_dir, {
        "directory": str(out_dir), "epsilon_target": cfg.inference.epsilon, "delta": block["delta"],
        "z_sensor": z, "z_labelled": z, "epsilon_sensor": block["epsilon_sensor_only"],
        "epsilon_labelled": block["epsilon_labelled"], "randomness": cfg.randomness_mode}, block["delta"])

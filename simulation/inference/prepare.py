"""The sensor-only sample of a simulated federation, prepared beside the training data."""

from __future__ import annotations

from pathlib import Path

from datasets.dataset import Dataset
from datasets.inference_data import inference_subdir, prepare_inference
from datasets.synthetic.generator import generate_sensor_only

from ..config import ExperimentConfig


def prepare_sensor_only(cfg: ExperimentConfig, diary: Dataset, data_dir: str) -> str:
    """Generate and prepare the sensor-only sample once per data, split and size; return its
    folder's name inside `data_dir`."""
    subdir = inference_subdir(cfg.inference.sensor_only_scale)
    out = Path(data_dir) / subdir
    if not (out / "index.json").exists() or not any(out.glob("trained-*.npz")):  # older caches lack 'trained'
        (out / "index.json").unlink(missing_ok=True)
        sensor_only = generate_sensor_only(cfg.data.generate, cfg.inference.sensor_only_scale)
        prepare_inference(diary, sensor_only, Path(data_dir) / subdir, cfg.seed, cfg.data.test_fraction,
                          cfg.data.holdout_fraction)
    return subdir

"""The sensor-only sample - simulated, or the NSOs' own imported table - prepared beside the training data."""

from __future__ import annotations

from pathlib import Path

from datasets.dataset import Dataset
from datasets.errors import UserError
from datasets.inference_data import inference_subdir, prepare_inference
from datasets.io import fingerprint, load_dataset
from datasets.synthetic.generator import generate_sensor_only

from ..config import ExperimentConfig


def _imported(cfg: ExperimentConfig, diary: Dataset) -> tuple[Dataset, str]:
    """The NSOs' own sensor-only table (inference.sensor_only_path), checked against the diary's schema."""
    path = cfg.inference.sensor_only_path
    sensor_only = load_dataset(path, cfg.data.schema_file if cfg.data.path else None, labelled=False)
    if sensor_only.schema.fingerprint() != diary.schema.fingerprint():
        raise UserError(f"inference.sensor_only_path = {path}: its schema '{sensor_only.schema.name}' differs from the "
                        f"diary sample's '{diary.schema.name}'; the model reads features of one schema: import the "
                        "sensor-only table with the diary sample's schema (--schema)")
    return sensor_only, f"inference-import-{fingerprint(sensor_only.windows)[:12]}"


def prepare_sensor_only(cfg: ExperimentConfig, diary: Dataset, data_dir: str) -> str:
    """Prepare the sensor-only sample - the NSOs' own (inference.sensor_only_path) or a simulated
    one, generated only when it is not on disk - once per data, split and size; return its
    folder's name inside `data_dir`."""
    if cfg.inference.sensor_only_path:
        imported, subdir = _imported(cfg, diary)
        sensor_only = lambda: imported  # noqa: E731
    else:
        subdir = inference_subdir(cfg.inference.sensor_only_scale)
        sensor_only = lambda: generate_sensor_only(cfg.data.generate, cfg.inference.sensor_only_scale)  # noqa: E731
    out = Path(data_dir) / subdir
    if not (out / "index.json").exists():
        prepare_inference(diary, sensor_only(), out, cfg.seed, cfg.data.test_fraction, cfg.data.holdout_fraction)
    return subdir

"""The smartwatch exercise recordings that `seglearn` ships (Burns et al. 2018, arXiv:1802.01489).

Ten study subjects wore a smartwatch (6-axis inertial sensor at 50 Hz) while doing sets of seven
shoulder physiotherapy exercises with each arm: 140 recordings, 81 minutes in all. This is real
wearable data with person ids, which is what federating it needs. Each recording is cut into
non-overlapping windows (default 2 s); per window: mean and SD of each axis and of the
acceleration and rotation magnitudes (16 features). The recordings are not diaries: `day` numbers
a subject's recordings and `slot` the windows within one. There is no NSO column; a run spreads the
subjects over NSOs with `data.assign_nsos` (stratified by label, datasets/assign.py).

The file is read from the installed wheel (`pip install seglearn==1.2.5`, in the project's dev
extra) without importing seglearn; it is a pickled NumPy dict, loaded only from that package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..errors import UserError
from ..table_schema import FeatureSpec, LabelSpec, TableSchema, WindowSpec

HZ = 50
LABELS = {"PEN": "pendulum", "ABD": "abduction", "FEL": "forward_elevation", "IR": "internal_rotation",
          "ER": "external_rotation", "TRAP": "trapezius_extension", "ROW": "upright_row"}
ACC_G, GYRO_RAD_S = 8.0, 35.0  # the sensor's full-scale ranges: +-8 g, +-2000 deg/s


def _schema(window_seconds: float) -> TableSchema:
    feats = []
    for axis, full in (("ax", ACC_G), ("ay", ACC_G), ("az", ACC_G), ("wx", GYRO_RAD_S), ("wy", GYRO_RAD_S),
                       ("wz", GYRO_RAD_S)):
        unit = "g" if axis.startswith("a") else "rad/s"
        feats += [FeatureSpec(name=f"{axis}_mean", unit=unit, min=-full, max=full),
                  FeatureSpec(name=f"{axis}_sd", unit=unit, min=0.0, max=full)]
    for name, full, unit in (("acc_mag", ACC_G, "g"), ("gyro_mag", GYRO_RAD_S, "rad/s")):
        feats += [FeatureSpec(name=f"{name}_mean", unit=unit, min=0.0, max=full * np.sqrt(3)),
                  FeatureSpec(name=f"{name}_sd", unit=unit, min=0.0, max=full)]
    return TableSchema(name="seglearn-watch", description="smartwatch shoulder exercises (Burns et al. 2018), "
                       f"{window_seconds:g}-s windows", windows=WindowSpec(seconds=window_seconds),
                       features=feats, label=LabelSpec(column="exercise", values=list(LABELS.values())))


def source_file() -> Path:
    spec = importlib.util.find_spec("seglearn")
    path = Path(spec.origin).parent / "data" / "watch_dataset.npy" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise UserError("the seglearn-watch converter reads the data shipped in the seglearn wheel; install it with "
                        "`pip install seglearn==1.2.5` (part of nso-ppml's dev extra)")
    return path


def _windows(series: np.ndarray, n: int) -> dict[str, np.ndarray]:
    k = len(series) // n
    w = series[: k * n].reshape(k, n, 6)
    out = {}
    for i, axis in enumerate(("ax", "ay", "az", "wx", "wy", "wz")):
        out[f"{axis}_mean"], out[f"{axis}_sd"] = w[:, :, i].mean(1), w[:, :, i].std(1)
    for name, cols in (("acc_mag", slice(0, 3)), ("gyro_mag", slice(3, 6))):
        mag = np.sqrt((w[:, :, cols] ** 2).sum(2))
        out[f"{name}_mean"], out[f"{name}_sd"] = mag.mean(1), mag.std(1)
    return out


RECORDING_ACTIVITIES = 4  # the per-recording table keeps the first four exercises: 80 recordings
STATISTICS = ("mean", "sd", "min", "max")
CHANNELS = (("ax", ACC_G, -ACC_G, "g"), ("ay", ACC_G, -ACC_G, "g"), ("az", ACC_G, -ACC_G, "g"),
            ("wx", GYRO_RAD_S, -GYRO_RAD_S, "rad/s"), ("wy", GYRO_RAD_S, -GYRO_RAD_S, "rad/s"),
            ("wz", GYRO_RAD_S, -GYRO_RAD_S, "rad/s"), ("acc_mag", ACC_G * np.sqrt(3), 0.0, "g"),
            ("gyro_mag", GYRO_RAD_S * np.sqrt(3), 0.0, "rad/s"))


def convert_recordings(window_seconds: float = 2.0) -> Dataset:
    """The small table a user with a handful of recordings brings (issue 24): one row per recording
    of the first four exercises (80 recordings), each recording its own person with one window, 32
    features (mean, SD, minimum and maximum of the six axes and the two magnitudes over the whole
    recording). Recordings of one subject count as different persons, as in such a table - so a
    subject's other recordings may sit in the test set. `window_seconds` is ignored: a window is a
    whole recording (nominally 40 s, the recordings' median)."""
    raw = np.load(source_file(), allow_pickle=True).item()
    codes = list(raw["y_labels"])
    labels = [LABELS[c] for c in codes[:RECORDING_ACTIVITIES]]
    feats = [FeatureSpec(name=f"{ch}_{stat}", unit=unit, min=0.0 if stat == "sd" else low, max=full)
             for ch, full, low, unit in CHANNELS for stat in STATISTICS]
    schema = TableSchema(name="seglearn-watch-recordings", description="smartwatch shoulder exercises (Burns et al. "
                         "2018), one window per recording", windows=WindowSpec(seconds=40.0), features=feats,
                         label=LabelSpec(column="exercise", values=labels))
    rows = []
    for i, (series, y) in enumerate(zip(raw["X"], raw["y"])):
        if int(y) >= RECORDING_ACTIVITIES:
            continue
        s = np.asarray(series, dtype=np.float64)
        chans = [s[:, j] for j in range(6)] + [np.sqrt((s[:, :3] ** 2).sum(1)), np.sqrt((s[:, 3:] ** 2).sum(1))]
        row = {"person_id": f"R{i:03d}", "day": 0, "slot": 0, "activity": LABELS[codes[int(y)]]}
        for (ch, *_), v in zip(CHANNELS, chans):
            row.update({f"{ch}_mean": v.mean(), f"{ch}_sd": v.std(), f"{ch}_min": v.min(), f"{ch}_max": v.max()})
        rows.append(row)
    windows = pd.DataFrame(rows)
    windows["activity"] = pd.Categorical(windows["activity"], categories=schema.labels)
    windows["wellbeing"] = np.float32(np.nan)
    return Dataset(windows=windows[["person_id", "day", "slot", *[f.name for f in feats], "activity", "wellbeing"]],
                   persons=pd.DataFrame(), schema=schema)


def convert(window_seconds: float = 2.0, subjects: int | None = None) -> Dataset:
    """The recordings as a window table with its schema; `subjects` keeps only the first few."""
    n = int(round(window_seconds * HZ))
    if n < 2 or abs(n / HZ - window_seconds) > 1e-9:
        raise UserError(f"--window-seconds {window_seconds:g}: must be a multiple of 1/{HZ} s of at least 2 samples")
    schema = _schema(window_seconds)
    raw = np.load(source_file(), allow_pickle=True).item()
    codes = list(raw["y_labels"])
    keep = sorted(set(int(s) for s in raw["subject"]))[:subjects]
    frames, session = [], {}
    for series, y, subject in zip(raw["X"], raw["y"], raw["subject"]):
        if int(subject) not in keep:
            continue
        feats = _windows(np.asarray(series, dtype=np.float64), n)
        k = len(next(iter(feats.values())))
        day = session[int(subject)] = session.get(int(subject), -1) + 1
        frames.append(pd.DataFrame({"person_id": f"S{int(subject):02d}", "day": day, "slot": np.arange(k),
                                    **feats, "activity": LABELS[codes[int(y)]]}))
    windows = pd.concat(frames, ignore_index=True)
    windows["activity"] = pd.Categorical(windows["activity"], categories=schema.labels)
    windows["wellbeing"] = np.float32(np.nan)
    return Dataset(windows=windows, persons=pd.DataFrame(), schema=schema)

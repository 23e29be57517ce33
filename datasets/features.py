"""Encode window tables into model inputs with fixed physical scales.

Scaling uses constants from the sensors' physical ranges (ENMO in milli-g on a log scale, cadence
over 250 steps/min, light over 5 decades...; for a declared schema, each feature's declared min
and max), never statistics of any NSO's data, so encoding leaks nothing across NSOs and every NSO,
the server and the centralized ceiling encode alike. Missing values become 0 with a
missing-indicator (per sensor group for the simulator, per feature that may be missing otherwise);
codes are one-hot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import ACTIVITIES, LOCATIONS, SLOTS_PER_DAY
from .table_schema import BUILTIN, FeatureSpec, TableSchema

FEATURE_NAMES: tuple[str, ...] = (
    "enmo_mean", "enmo_sd", "enmo_p90", "steps", "peak_cadence", "wrist_missing", "hr_pct_max", "hr_missing",
    "log10_lux", "light_missing", *[f"loc_{x}" for x in LOCATIONS], "speed", "gps_missing",
    "tod_sin", "tod_cos", "tod_sin2", "tod_cos2", *[f"dow_{d}" for d in range(7)],
)
NUM_FEATURES = len(FEATURE_NAMES)
_LOG_ENMO_MAX = np.log1p(1000.0)
_LOG_SPEED_MAX = np.log1p(150.0)


def _filled(values: np.ndarray, fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    missing = np.isnan(values)
    return np.where(missing, fill, values), missing


def _encode_builtin(windows: pd.DataFrame) -> np.ndarray:
    """The simulator's encoding: sensor groups, location one-hot, time of day, day of week."""
    col = lambda c: windows[c].to_numpy(dtype=np.float64)  # noqa: E731
    n = len(windows)
    x = np.zeros((n, NUM_FEATURES), dtype=np.float32)
    enmo, wrist_missing = _filled(col("enmo_mean"))
    x[:, 0] = np.log1p(enmo) / _LOG_ENMO_MAX
    x[:, 1] = np.log1p(_filled(col("enmo_sd"))[0]) / _LOG_ENMO_MAX
    x[:, 2] = np.log1p(_filled(col("enmo_p90"))[0]) / _LOG_ENMO_MAX
    x[:, 3] = _filled(col("steps_per_min"))[0] / 250.0
    x[:, 4] = _filled(col("peak_cadence"))[0] / 250.0
    x[:, 5] = wrist_missing
    hr, hr_missing = _filled(col("hr_pct_max"))
    x[:, 6], x[:, 7] = hr, hr_missing
    lux, light_missing = _filled(col("log10_lux"))
    x[:, 8], x[:, 9] = lux / 5.0, light_missing
    loc, gps_missing = _filled(col("location"), -1.0)
    for k in range(len(LOCATIONS)):
        x[:, 10 + k] = loc == k
    speed = _filled(col("speed_kmh"))[0]
    x[:, 15] = np.log1p(speed) / _LOG_SPEED_MAX
    x[:, 16] = gps_missing
    angle = 2 * np.pi * (col("slot") + 0.5) / SLOTS_PER_DAY
    x[:, 17], x[:, 18] = np.sin(angle), np.cos(angle)
    x[:, 19], x[:, 20] = np.sin(2 * angle), np.cos(2 * angle)
    dow = col("day_of_week").astype(np.int64)
    x[np.arange(n), 21 + dow] = 1.0
    return x


def _feature_columns(spec: FeatureSpec) -> list[str]:
    names = [f"{spec.name}={k}" for k in range(spec.codes)] if spec.kind == "code" else [spec.name]
    return names + ([f"{spec.name}_missing"] if spec.missing else [])


def feature_names(schema: TableSchema) -> tuple[str, ...]:
    """The model's input columns for data of `schema`, in order."""
    if schema.builtin:
        return FEATURE_NAMES
    names = [c for spec in schema.features for c in _feature_columns(spec)]
    return tuple(names + (["tod_sin", "tod_cos", "tod_sin2", "tod_cos2"] if schema.windows.time_features else []))


def _scaled(values: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    f = np.log1p if spec.transform == "log1p" else (lambda v: v)
    lo, hi = f(spec.min), f(spec.max)
    return (f(values) - lo) / (hi - lo)


def _encode_declared(windows: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Numbers scaled to [0, 1] by their declared range, codes one-hot, NaN -> 0 plus an indicator."""
    cols = []
    for spec in schema.features:
        v = windows[spec.name].to_numpy(dtype=np.float64)
        missing = np.isnan(v)
        if spec.kind == "code":
            cols += [(v == k) for k in range(spec.codes)]
        else:
            cols.append(np.where(missing, 0.0, _scaled(np.where(missing, spec.min, v), spec)))
        if spec.missing:
            cols.append(missing)
    if schema.windows.time_features:
        angle = 2 * np.pi * (windows["slot"].to_numpy(dtype=np.float64) + 0.5) / schema.windows.slots_per_day
        cols += [np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)]
    return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((len(windows), 0), np.float32)


def encode(windows: pd.DataFrame, schema: TableSchema = BUILTIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features float32 [n, len(feature_names(schema))], label index int64 [n], well-being float32
    [n], NaN = not rated), from a validated table (internal column names)."""
    x = _encode_builtin(windows) if schema.builtin else _encode_declared(windows, schema)
    labels = ACTIVITIES if schema.builtin else schema.labels
    y = pd.Categorical(windows["activity"].astype(str), categories=list(labels)).codes.astype(np.int64)
    n = len(windows)
    wb = windows["wellbeing"].to_numpy(dtype=np.float32) if "wellbeing" in windows else np.full(n, np.nan, np.float32)
    return x, y, wb

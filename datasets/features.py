"""Encode window tables into model inputs with fixed physical scales.

Scaling uses constants from the sensors' physical ranges (ENMO in milli-g on a log scale, cadence
over 250 steps/min, light over 5 decades...), never statistics of any NSO's data, so encoding
leaks nothing across NSOs and every NSO, the server and the centralized ceiling encode alike.
Missing values become 0 with a missing-indicator per sensor group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import ACTIVITIES, LOCATIONS, SLOTS_PER_DAY

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


def encode(windows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features float32 [n, NUM_FEATURES], activity int64 [n], well-being float32 [n], NaN = not rated)."""
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
    y = pd.Categorical(windows["activity"].astype(str), categories=list(ACTIVITIES)).codes.astype(np.int64)
    wb = windows["wellbeing"].to_numpy(dtype=np.float32) if "wellbeing" in windows else np.full(n, np.nan, np.float32)
    return x, y, wb

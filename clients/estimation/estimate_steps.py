"""The steps of one NSO's time-use estimate (national.py runs them): classify persons with the
trained model, the exact blocks of the release (release.py adds the noise), the correction of the
shares (quantify.py), and the person-level residuals the bootstrap intervals (bootstrap.py) rest on.

What the interval covers: the estimate's error against the sensor-only sample's own true minutes.
Each replicate redraws (a) the labelled persons behind the confusion matrix (a new M), (b) the
sensor-only persons' own classification errors - person-level residuals of the correction,
measured on labelled persons, as many as the cell has persons - and (c) the release noise.
The interval endpoints are computed from the NSO's microdata: they are a quality measure outside
the release's epsilon (docs/time_use.md says what publishing them would take).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from datasets.inference_data import Sample

from . import quantify
from .cells import Cell, PersonDays, cell_sums, membership, per_person_day, person_days
from .config import InferenceConfig



@dataclass
class Predictions:
    proba: np.ndarray  # [n, K]
    label: np.ndarray  # [n]
    wellbeing: np.ndarray  # [n], clipped to the data's scale (NaN without one)


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, wellbeing_range, batch: int = 65536) -> Predictions:
    model.eval()
    k = model.n_classes
    outs = [model(torch.from_numpy(x[s:s + batch])) for s in range(0, len(x), batch)]
    out = torch.cat(outs) if outs else torch.zeros((0, k + 1))
    proba = torch.softmax(out[:, :k], dim=1).numpy().astype(np.float64)
    wb = out[:, k].numpy().astype(np.float64)
    wb = np.clip(wb, *wellbeing_range) if wellbeing_range else np.full(len(wb), np.nan)
    return Predictions(proba, proba.argmax(axis=1), wb)


def _weights(p: Predictions, estimator: str) -> np.ndarray:
    """Per window and label: 1 for the predicted label (ACC), or the predicted probabilities (PACC)."""
    return p.proba if estimator in ("pacc", "ppi") else np.eye(p.proba.shape[1])[p.label]


@dataclass
class Released:
    """What the NSO publishes (with noise under DP): the inputs of every number it reports."""

    minutes: np.ndarray  # [cells, K] summed predicted minutes
    person_days: np.ndarray  # [cells]
    confusion: np.ndarray  # [K, K]
    wellbeing: np.ndarray | None  # [K] summed predicted well-being minus the scale's centre, per predicted label (overall)


@dataclass
class LabelledPersons:
    """Per labelled person, their contribution to each cell's confusion matrix [persons, cells, K, K].

    Each cell has a confusion matrix of its own (the labelled person-days of that cell): how the
    model errs differs between weekdays and weekends, young and old, and a matrix of all persons
    would leave that difference in the corrected figures of a breakdown."""

    confusion: np.ndarray


def labelled_persons(sample: Sample, p: Predictions, estimator: str, k: int, max_days: int,
                     cells: list[Cell]) -> LabelledPersons:
    days = person_days(sample, max_days)
    kept = days.of_window >= 0
    n = sample.persons
    w = _weights(p, estimator)[kept]
    y, pday = sample.y[kept], days.of_window[kept]
    per_day = np.zeros((days.count, k, k))
    np.add.at(per_day, (pday, y), w)
    member = membership(sample, days, cells)  # [person-days, cells]
    conf = np.zeros((n, len(cells), k, k))
    np.add.at(conf, days.person, member[:, :, None, None] * per_day[:, None])
    return LabelledPersons(conf[conf[:, 0].sum(axis=(1, 2)) > 0])  # cell 0, overall: persons with windows


def sensor_release(sample: Sample, p: Predictions, cells: list[Cell], cfg: InferenceConfig,
                   window_minutes: float, day_bound: float | None = None, wellbeing_centre: float = 0.0,
                   wellbeing_day_bound: float | None = None) -> tuple[dict[str, np.ndarray], PersonDays, np.ndarray]:
    """Exact blocks of the sensor-only release, the person-days and their cell membership. Each
    person-day's minutes are clipped to `day_bound` and its well-being sums (ratings minus
    `wellbeing_centre`, per predicted label) to `wellbeing_day_bound`: the L2 bounds the release's
    sensitivity rests on (none: not clipped)."""
    days = person_days(sample, cfg.max_days)
    member = membership(sample, days, cells)
    w = _weights(p, cfg.resolved_estimator)
    s, n = cell_sums(per_person_day(w * window_minutes, days, day_bound), member)
    blocks = {"minutes": s, "person_days": n}
    if not np.isnan(p.wellbeing).all():
        centred = w * (p.wellbeing - wellbeing_centre)[:, None]
        blocks["wellbeing"] = per_person_day(centred, days, wellbeing_day_bound).sum(axis=0)
    return blocks, days, member


def corrected(minutes: np.ndarray, person_days: np.ndarray, m: np.ndarray, day_minutes: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """(corrected, classify-and-count) minutes per day [cells, K] from (noisy) sums, each cell
    corrected with its own confusion matrix m[cell]."""
    est, cc = np.zeros_like(minutes), np.zeros_like(minutes)
    for c in range(len(minutes)):
        p_hat = minutes[c] / (max(person_days[c], 1.0) * day_minutes)
        est[c] = quantify.adjusted(p_hat, m[c]) * day_minutes
        cc[c] = quantify.classify_count(p_hat) * day_minutes
    return est, cc


def residuals(lab: LabelledPersons, cell: int, m: np.ndarray, day_minutes: float) -> tuple[np.ndarray, np.ndarray]:
    """(persons with windows in the cell, their error of the cell's linear correction against their
    own diaries in that cell, in minutes per day)."""
    conf = lab.confusion[:, cell]
    windows = conf.sum(axis=(1, 2))
    who = np.nonzero(windows > 0)[0]
    predicted, true = conf[who].sum(axis=1) / windows[who, None], conf[who].sum(axis=2) / windows[who, None]
    return who, (predicted @ np.linalg.pinv(m.T).T - true) * day_minutes

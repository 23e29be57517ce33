"""The inputs of time-use estimation, prepared per NSO, and the truth kept apart from them.

An NSO estimating time use from sensors has three things: its sensor-only sample (persons who wore
the devices but kept no diary: windows, no labels), its labelled persons (the diary persons it
tested the model on, whose confusion matrix corrects the estimates) and its diary sample as a
whole (for comparison). In simulation the sensor-only persons' own diaries exist too; they are
written to a separate `truth/` directory that only the evaluation (simulation/inference) reads:
the files the estimation loads have no label array at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write, write_json
from .dataset import Dataset
from .errors import UserError
from .features import encode
from .schema import AGE_GROUPS, EMPLOYMENT, SEXES
from .splits import split_persons, window_split
from .table_schema import TableSchema

GROUPS: dict[str, tuple[str, ...]] = {"sex": SEXES, "age_group": AGE_GROUPS, "employment": EMPLOYMENT}
DAYTYPES: tuple[str, ...] = ("weekday", "weekend")
TRUTH_DIR = "truth"


def inference_subdir(scale: float) -> str:
    """Where in a prepared data directory the sensor-only sample of a given size lives."""
    return f"inference-x{scale:g}"


@dataclass(frozen=True)
class Sample:
    """Windows of one NSO's persons with what grouping needs; `y` only for labelled samples."""

    x: np.ndarray  # encoded features [n, d] (may be empty [n, 0] where not needed)
    person: np.ndarray  # person index per window, 0..persons-1
    day: np.ndarray  # day index within the person, per window
    weekend: np.ndarray  # 1 weekend, 0 weekday, -1 unknown (no day_of_week in the data)
    groups: dict[str, np.ndarray]  # person index -> category code (-1 unknown), per GROUPS key
    y: np.ndarray | None = None

    @property
    def persons(self) -> int:
        return int(self.person.max() + 1) if len(self.person) else 0


def _sample_arrays(windows: pd.DataFrame, persons: pd.DataFrame, schema: TableSchema, with_x: bool) -> dict:
    pid = windows["person_id"].astype(str)
    person, ids = pd.factorize(pid, sort=False)
    x, y, _ = encode(windows, schema)
    weekend = ((windows["day_of_week"].to_numpy() >= 5).astype(np.int8) if "day_of_week" in windows
               else np.full(len(windows), -1, np.int8))
    table = persons.assign(person_id=persons["person_id"].astype(str)).set_index("person_id") if len(persons) else None
    out = {"x": x if with_x else np.zeros((len(windows), 0), np.float32), "person": person.astype(np.int64),
           "day": windows["day"].to_numpy(np.int64), "weekend": weekend, "y": y}
    for g, cats in GROUPS.items():
        codes = np.full(len(ids), -1, np.int64)
        if table is not None and g in table.columns:
            codes = pd.Categorical(table[g].astype(str).reindex(ids).to_numpy(), categories=list(cats)).codes.astype(np.int64)
        out[f"group_{g}"] = codes
    return out


def _as_sample(z) -> Sample:
    return Sample(x=z["x"], person=z["person"], day=z["day"], weekend=z["weekend"],
                  groups={g: z[f"group_{g}"] for g in GROUPS}, y=z["y"] if "y" in z else None)


def sample_of(windows: pd.DataFrame, persons: pd.DataFrame, schema: TableSchema) -> Sample:
    """A labelled Sample with features straight from tables: for studies that draw persons from a
    simulated population (simulation/inference/replicate.py), never for an NSO's estimate."""
    return _as_sample(_sample_arrays(windows, persons, schema, with_x=True))


def _save(path: Path, arrays: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def prepare_inference(diary: Dataset, sensor_only: Dataset, out_dir: Path | str, seed: int, test_fraction: float,
                      holdout_fraction: float) -> dict:
    """Write into `out_dir`, per NSO: sensor-<NSO>.npz (no labels), labelled-<NSO>.npz (its test persons, the same
    persons and windows as its prepared partition's test set), diary-<NSO>.npz (its train and test
    persons' labels, for comparison), trained-<NSO>.npz (the train persons' labels and
    features: their predictions tune the prediction-powered estimate), and
    truth/truth-<NSO>.npz (the sensor-only persons' diaries, where they exist: simulated samples)."""
    out = Path(out_dir)
    schema = diary.schema
    labels = window_split(diary.windows, split_persons(diary.windows, seed, test_fraction, holdout_fraction))
    nsos = [str(c) for c in diary.windows["nso"].astype(str).unique()]
    counts = {}
    if set(sensor_only.windows["nso"].astype(str).unique()) != set(nsos):
        raise UserError("the sensor-only sample and the diary sample hold different NSOs")
    for nso in nsos:
        sw = sensor_only.windows[sensor_only.windows["nso"].astype(str) == nso]
        in_nso = (diary.windows["nso"].astype(str) == nso).to_numpy()
        s = _sample_arrays(sw, sensor_only.persons, schema, with_x=True)
        _, _, wb = encode(sw, schema)
        y = s.pop("y")
        if not sw["activity"].isna().all():  # simulated: their diaries exist, for evaluation only
            _save(out / TRUTH_DIR / f"truth-{nso}.npz", {"y": y, "wellbeing": wb})
        _save(out / f"sensor-{nso}.npz", s)
        _save(out / f"labelled-{nso}.npz", _sample_arrays(diary.windows[in_nso & (labels == "test")], diary.persons,
                                                          schema, with_x=True))
        _save(out / f"diary-{nso}.npz", _sample_arrays(diary.windows[in_nso & (labels != "holdout")], diary.persons,
                                                       schema, with_x=False))
        _save(out / f"trained-{nso}.npz", _sample_arrays(diary.windows[in_nso & (labels == "train")], diary.persons,
                                                         schema, with_x=True))
        counts[nso] = {"sensor_only_persons": int(sw["person_id"].nunique()), "sensor_only_windows": len(sw),
                       "labelled_windows": int((in_nso & (labels == "test")).sum()),
                       "diary_persons": int(diary.windows["person_id"][in_nso & (labels != "holdout")].nunique())}
    index = {"nsos": nsos, "counts": counts, "labels": list(schema.labels), "window_minutes": schema.windows.seconds / 60,
             "wellbeing_range": [schema.wellbeing.min, schema.wellbeing.max] if schema.wellbeing else None,
             "available_groups": _available(out, nsos),
             "slots_per_day": schema.windows.slots_per_day, "groups": {g: list(c) for g, c in GROUPS.items()},
             "daytypes": list(DAYTYPES)}
    write_json(out / "index.json", index)
    return index


def _available(out: Path, nsos: list[str]) -> list[str]:
    """Breakdowns known for every person (and day type for every window) of every sample."""
    samples = [load_sample(out, kind, nso) for nso in nsos for kind in ("sensor", "labelled", "diary")]
    groups = [g for g in GROUPS if all((s.groups[g] >= 0).all() for s in samples)]
    return groups + (["daytype"] if all((s.weekend >= 0).all() for s in samples) else [])


def read_inference_index(inf_dir: Path | str) -> dict:
    p = Path(inf_dir) / "index.json"
    if not p.exists():
        raise UserError(f"{inf_dir}: no sensor-only sample prepared (no index.json); time-use estimation needs "
                        "[inference] enabled in the config of the run")
    return json.loads(p.read_text())


def load_sample(inf_dir: Path | str, kind: str, nso: str) -> Sample:
    """kind 'sensor' (no labels), 'labelled' (held out from training), 'trained' (the diary persons
    the model was trained on) or 'diary' (both) of one NSO; never the truth."""
    if kind not in ("sensor", "labelled", "diary", "trained"):
        raise ValueError(f"unknown sample kind {kind!r}")
    p = Path(inf_dir) / f"{kind}-{nso}.npz"
    if not p.exists():
        raise UserError(f"{p}: no {kind} sample for NSO {nso!r}")
    with np.load(p) as z:
        return _as_sample(z)

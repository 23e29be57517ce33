"""A dataset's declared schema: its feature columns, its label and the labels it may take.

Real NSO data come with other sensors and other activity codes than the simulator's. A small TOML
file beside the data (docs/data_format.md) declares them; validation, feature scaling, the model's
sizes, metrics and reports all follow it. A table without one is read with BUILTIN, the simulator's
schema, exactly as before schemas existed.

Feature scaling uses the declared ranges (physical sensor ranges, known before any data are seen),
never statistics of an NSO's data, so encoding leaks nothing across NSOs and every party encodes
alike; that is why a numeric feature must declare both `min` and `max`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import schema as sim
from .errors import UserError, validation_lines

KEYS = ("nso", "person_id", "day", "slot")
NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SCHEMA_FILE = "schema.toml"


class FeatureSpec(BaseModel):
    """[[features]]: one numeric sensor column, or a small categorical code."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    kind: Literal["number", "code"] = "number"
    unit: str = ""
    min: float | None = Field(None, description="lowest allowed value (number); scaling maps it to 0")
    max: float | None = Field(None, description="highest allowed value (number); scaling maps it to 1")
    codes: int | None = Field(None, ge=2, le=1000, description="code: values 0..codes-1, one-hot encoded")
    missing: bool = Field(False, description="may the column hold NaN/empty (sensor missing)?")
    transform: Literal["none", "log1p"] = "none"
    description: str = ""

    @model_validator(mode="after")
    def _kind(self) -> "FeatureSpec":
        if self.kind == "code":
            if self.codes is None:
                raise ValueError(f"feature '{self.name}': kind = 'code' needs codes = N (values 0..N-1)")
            if self.min is not None or self.max is not None or self.transform != "none":
                raise ValueError(f"feature '{self.name}': a code takes no min, max or transform (0..codes-1)")
        elif self.min is None or self.max is None or not self.max > self.min:
            raise ValueError(f"feature '{self.name}': a number needs min < max (its physical range, used for "
                             f"scaling), got min={self.min}, max={self.max}")
        elif self.transform == "log1p" and self.min < 0:
            raise ValueError(f"feature '{self.name}': transform = 'log1p' needs min >= 0")
        return self

    def bounds(self) -> tuple[float | None, float | None]:
        return (0, self.codes - 1) if self.kind == "code" else (self.min, self.max)


class LabelSpec(BaseModel):
    """[label]: the column holding each window's activity and the labels it may take."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field("activity", pattern=NAME)
    values: list[str] = Field(min_length=2, max_length=1000)
    hetus: dict[str, str] = Field(default_factory=dict, description="label -> HETUS activity, for time-use "
                                                                    "statistics against published figures")

    @model_validator(mode="after")
    def _values(self) -> "LabelSpec":
        dup = sorted({v for v in self.values if self.values.count(v) > 1})
        if dup:
            raise ValueError(f"label values {dup} are listed twice")
        unknown = sorted(set(self.hetus) - set(self.values))
        if unknown:
            raise ValueError(f"label.hetus maps {unknown}, which are not label values {self.values}")
        bad = sorted({v for v in self.hetus.values() if v not in sim.ACTIVITIES})
        if bad:
            raise ValueError(f"label.hetus targets {bad} are not HETUS activities; allowed: {', '.join(sim.ACTIVITIES)}")
        return self


class WellbeingSpec(BaseModel):
    """[wellbeing]: an optional momentary well-being rating per window (NaN = not rated)."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field("wellbeing", pattern=NAME)
    min: float = 0.0
    max: float = 6.0


class WindowSpec(BaseModel):
    """[windows]: how long one row is; `slot` counts windows from the start of a day (or session)."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(600.0, gt=0, le=86_400)
    time_features: bool = Field(False, description="add time of day (from slot) to the model's inputs")

    @field_validator("seconds")
    @classmethod
    def _divides_a_day(cls, v: float) -> float:
        if abs(86_400 / v - round(86_400 / v)) > 1e-9:
            raise ValueError(f"a window of {v:g} s does not divide a day (86,400 s) into whole slots")
        return v

    @property
    def slots_per_day(self) -> int:
        return int(round(86_400 / self.seconds))


class TableSchema(BaseModel):
    """A whole schema file (docs/data_format.md, "Schema file")."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("dataset", pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    windows: WindowSpec = Field(default_factory=WindowSpec)
    features: list[FeatureSpec] = Field(min_length=1, max_length=10_000)
    label: LabelSpec
    wellbeing: WellbeingSpec | None = None
    builtin: bool = Field(False, description="the simulator's own schema and encoding (not for files)")

    @model_validator(mode="after")
    def _names(self) -> "TableSchema":
        names = [f.name for f in self.features]
        taken = set(KEYS) | {self.label.column} | ({self.wellbeing.column} if self.wellbeing else set())
        clash = sorted(set(names) & taken)
        if clash:
            raise ValueError(f"feature name(s) {clash} are used for keys, the label or well-being")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feature name(s) {dup} are declared twice")
        if self.wellbeing and self.wellbeing.column == self.label.column:
            raise ValueError("wellbeing.column and label.column name the same column")
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label.values)

    def columns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, optional) columns of a window table of this schema."""
        required = KEYS + tuple(f.name for f in self.features) + (self.label.column,)
        return required, ((self.wellbeing.column,) if self.wellbeing else ())

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _builtin() -> TableSchema:
    codes = {"location": len(sim.LOCATIONS), "day_of_week": 7}
    features = [FeatureSpec(name=c, kind="code", codes=codes[c], missing=c != "day_of_week") if c in codes
                else FeatureSpec(name=c, min=sim.FEATURE_RANGES[c][0], max=sim.FEATURE_RANGES[c][1] or 1e9, missing=True)
                for c in sim.FEATURE_COLUMNS]
    return TableSchema(
        name="nso-ppml-simulator", builtin=True, description="the simulator's HETUS window table",
        windows=WindowSpec(seconds=sim.SLOT_MINUTES * 60, time_features=True), features=features,
        label=LabelSpec(column=sim.LABEL_COLUMN, values=list(sim.ACTIVITIES), hetus={a: a for a in sim.ACTIVITIES}),
        wellbeing=WellbeingSpec(column=sim.WELLBEING_COLUMN, min=sim.WELLBEING_RANGE[0], max=sim.WELLBEING_RANGE[1]))


BUILTIN = _builtin()


def upper_bound(schema: TableSchema, spec: FeatureSpec) -> float | None:
    """The builtin's open-ended ranges (ENMO has no physical maximum) stay unbounded in validation."""
    if schema.builtin and spec.kind == "number":
        return sim.FEATURE_RANGES[spec.name][1]
    return spec.bounds()[1]


def load_schema(path: Path | str) -> TableSchema:
    """Read and check a schema file; one message naming every bad key."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such schema file")
    try:
        raw = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: not a valid TOML schema file: {exc}") from None
    if raw.get("builtin"):
        raise UserError(f"{p}: 'builtin' is reserved for the simulator's schema; leave it out")
    try:
        return TableSchema.model_validate(raw)
    except ValidationError as exc:
        raise UserError("\n".join([f"{p}: invalid schema (see docs/data_format.md)",
                                   *validation_lines(exc, doc="docs/data_format.md")])) from None


def find_schema(data_path: Path | str) -> Path | None:
    """The schema file that belongs to a dataset: DIR/schema.toml, or beside a window file
    `<name>.schema.toml` or `schema.toml`; None means the builtin schema."""
    p = Path(data_path)
    candidates = [p / SCHEMA_FILE] if p.is_dir() else [p.with_suffix(".schema.toml"), p.parent / SCHEMA_FILE]
    return next((c for c in candidates if c.is_file()), None)


def resolve_schema(data_path: Path | str, explicit: Path | str | None = None) -> TableSchema:
    """The explicit schema file if given, else the one beside the data, else BUILTIN."""
    found = Path(explicit) if explicit else find_schema(data_path)
    return load_schema(found) if found else BUILTIN

"""Sweeps: a grid over config keys x seeds, each point an independent run with its own directory.

Sweep file (TOML):
    [sweep]
    name = "privacy_utility"
    base = "baseline.toml"          # experiment config, relative to this file
    seeds = [0, 1]
    workers = 2                     # parallel processes; results do not depend on it
    references = true               # add non-private federated and centralized runs per seed
    dp_ceiling = false              # add each private point's pooled-data DP ceiling (centralized, same epsilon)
    [sweep.set]                     # fixed overrides for every point
    "privacy.enabled" = true
    [sweep.grid]                    # every combination of these values
    "privacy.target_epsilon" = [1.0, 4.0, 16.0]
    [[sweep.variants]]              # optional: sets of keys that go together, each x the grid
    "privacy.unit" = "record"
    [[sweep.variants]]
    "privacy.unit" = "person"
    "privacy.scope" = "federation"
    "secure_aggregation.enabled" = true

Sweep directory: sweep.toml (a copy), plan.json, points/<id>/ (run directories), results.csv.
A point is done when its summary.json exists (written last, atomically); a restarted sweep skips
done points and redoes the others from scratch. Point ids hash the whole resolved config. results.csv is rewritten whole, atomically, after
every point, so it is never half-written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clients.run_config import flatten, nest
from datasets.errors import validation_lines

from ..config import ConfigError, ExperimentConfig, deep_merge, format_validation_error, read_toml, resolve_data_files

REFERENCE_PREFIXES = ("privacy.", "secure_aggregation.")


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    base: str
    seeds: list[int] = Field(min_length=1)
    grid: dict[str, Any] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    variants: list[dict[str, Any]] = Field(default_factory=lambda: [{}], min_length=1,
                                           description="sets of keys that go together, each x the grid")
    workers: int = Field(2, ge=1, le=64)
    references: bool = True
    dp_ceiling: bool = Field(False, description="add each private grid point's pooled-data DP ceiling (the point on "
                                                "the centralized engine): one more run per private point")


@dataclass
class Point:
    id: str
    role: str  # "grid", "non_private" or "centralized"
    seed: int
    values: dict[str, Any]  # the swept keys' values of this point
    config: dict[str, Any] = field(repr=False)


def _point_id(role: str, config: dict[str, Any]) -> str:
    """Hash of the point's whole resolved config: changing the base or sweep.set gives new points,
    so a resumed sweep never reuses a run made with other settings; extending a grid keeps the
    finished ones."""
    blob = json.dumps({"role": role, "config": config}, sort_keys=True, default=str)
    return f"p-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _validate(raw: dict[str, Any], where: str) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


def _read_spec(path: Path) -> SweepSpec:
    raw = read_toml(path)
    if "sweep" not in raw:
        raise ConfigError(f"{path}: not a sweep file: no [sweep] table (see docs/sweeps.md)")
    extra = sorted(set(raw) - {"sweep"})
    if extra:
        raise ConfigError(f"{path}: unknown top-level key(s) {extra}; a sweep file holds only [sweep]")
    sweep_raw = dict(raw["sweep"])
    sweep_raw["grid"] = flatten(sweep_raw.get("grid", {}))
    sweep_raw["set"] = flatten(sweep_raw.get("set", {}))
    if isinstance(sweep_raw.get("variants"), list):
        sweep_raw["variants"] = [flatten(v) if isinstance(v, dict) else v for v in sweep_raw["variants"]]
    try:
        spec = SweepSpec.model_validate(sweep_raw)
    except ValidationError as exc:
        raise ConfigError("\n".join([f"{path}: invalid sweep", *validation_lines(exc, "sweep.", "docs/sweeps.md")])) from None
    if not spec.grid:
        raise ConfigError(f"{path}: sweep.grid is empty; give at least one key with a list of values, "
                          'e.g. "privacy.target_epsilon" = [1.0, 8.0]')
    for key, values in spec.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: sweep.grid.{key} must be a non-empty list of values (got {values!r})")
    overlap = sorted({k for v in spec.variants for k in v} & set(spec.grid))
    if overlap:
        raise ConfigError(f"{path}: {overlap} set both in sweep.grid and in sweep.variants; give each key in one")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise ConfigError(f"{path}: sweep.seeds has repeats: {spec.seeds}")
    return spec


def _read_base(path: Path, spec: SweepSpec) -> dict[str, Any]:
    base_path = (path.parent / spec.base) if not Path(spec.base).is_absolute() else Path(spec.base)
    if not base_path.exists():
        raise ConfigError(f"{path}: sweep.base = {spec.base!r}: no such config ({base_path})")
    base = read_toml(base_path)
    if "sweep" in base:
        raise ConfigError(f"{path}: sweep.base = {spec.base!r} is itself a sweep file; it must be an experiment config")
    resolve_data_files(base, base_path.parent)
    return deep_merge(base, nest(spec.set))


def _combos(spec: SweepSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every variant x grid combination, and the distinct combinations of the keys that are not
    privacy or SecAgg+ settings (one reference pair per such combination and seed)."""
    keys = list(spec.grid)
    grid = [dict(zip(keys, c)) for c in itertools.product(*(spec.grid[k] for k in keys))]
    combos = [{**v, **c} for v in spec.variants for c in grid]
    refs: list[dict[str, Any]] = []
    for c in combos:
        ref = {k: v for k, v in c.items() if not k.startswith(REFERENCE_PREFIXES)}
        if ref not in refs:
            refs.append(ref)
    return combos, refs


def _coverage_points(path: Path, spec: SweepSpec, base: dict[str, Any]) -> list[Point]:
    """A sweep over a coverage config (coverage_psi/): grid keys under `coverage.`, no reference runs."""
    from coverage_psi.config import CoverageConfig

    if set(base) != {"coverage"}:
        raise ConfigError(f"{path}: sweep.base is a coverage config; it may hold only the [coverage] table")
    combos, _ = _combos(spec)
    points = []
    for seed in spec.seeds:
        for values in combos:
            replicate = {"seed": seed, "name": spec.name}
            if "coverage.data.seed" not in values:  # each seed a new simulated population, unless swept itself
                replicate["data"] = {"seed": seed}
            raw = deep_merge(deep_merge(base, nest(values)), {"coverage": replicate})
            where = f"{path}: point seed={seed} " + " ".join(f"{k}={v!r}" for k, v in values.items())
            try:
                cfg = CoverageConfig.model_validate(raw["coverage"])
            except ValidationError as exc:
                raise ConfigError("\n".join([f"{where}: invalid config", *validation_lines(exc, "coverage.")])) from None
            cfg_dict = {"coverage": cfg.model_dump(exclude_none=True)}
            points.append(Point(_point_id("grid", cfg_dict), "grid", seed, values, cfg_dict))
    return points


def load_sweep(path: Path | str) -> tuple[SweepSpec, list[Point]]:
    """Read and check a sweep file and every point it makes; raise ConfigError before anything runs."""
    path = Path(path)
    spec = _read_spec(path)
    base = _read_base(path, spec)
    if "coverage" in base:
        return spec, _coverage_points(path, spec, base)
    combos, ref_combos = _combos(spec)
    points: list[Point] = []
    for seed in spec.seeds:
        todo = [("grid", c, {}) for c in combos]
        if spec.references:
            off = {"privacy": {"enabled": False}, "secure_aggregation": {"enabled": False}}
            todo += [("non_private", c, off) for c in ref_combos]
            todo += [("centralized", c, deep_merge(off, {"engine": {"name": "centralized"}})) for c in ref_combos]
        if spec.dp_ceiling:  # each private grid point's pooled-data DP ceiling: one curator, the same epsilon
            todo += [("centralized_dp", c, {"engine": {"name": "centralized"}}) for c in combos]
        for role, values, extra_set in todo:
            # a reference overrides the base and the point's values override it; the DP ceiling is the
            # point itself on the centralized engine, so its engine overrides the values
            layers = (nest(values), extra_set) if role == "centralized_dp" else (extra_set, nest(values))
            cfg_raw = deep_merge(deep_merge(deep_merge(base, layers[0]), layers[1]), {"seed": seed})
            if role == "centralized_dp" and (cfg_raw.get("inference", {}).get("enabled")
                                             or not cfg_raw.get("privacy", {}).get("enabled")):
                continue  # time-use runs have no centralized form; a non-private point's ceiling is the reference
            where = f"{path}: point {role} seed={seed} " + " ".join(f"{k}={v!r}" for k, v in values.items())
            cfg = _validate(cfg_raw, where)
            for name, file in (("data.path", cfg.data.path), ("data.schema", cfg.data.schema_file)):
                if file and not Path(file).exists():
                    raise ConfigError(f"{where}: {name} = {file!r}: no such file or directory")
            cfg_dict = cfg.model_dump(exclude_none=True)
            cfg_dict["name"] = f"{spec.name}"
            points.append(Point(_point_id(role, cfg_dict), role, seed, values, cfg_dict))
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: the grid makes identical points (a value listed twice?)")
    return spec, points

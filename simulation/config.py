"""Experiment configs: TOML files validated with pydantic before anything runs.

Every error names the key, the value given and what is allowed, so a typo in a sweep of hundreds
of runs fails at once instead of after an hour.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clients.estimation.config import InferenceConfig
from clients.model import ModelConfig
from clients.privacy.config import PrivacyConfig, check_federation_scope
from clients.run_config import nest
from clients.secure_aggregation.config import SecureAggregationConfig
from clients.training import TrainingConfig
from datasets.errors import UserError, validation_lines
from datasets.synthetic.generator import GeneratorSettings
from server.config import FederationConfig

from .audit.config import AuditConfig


class ConfigError(UserError):
    """A config file or --set override is invalid."""


class DataConfig(BaseModel):
    """[data]: simulate (generate) or import (path) the NSOs' window tables."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str | None = Field(None, description="imported dataset: a window file or a dataset directory")
    schema_file: str | None = Field(None, alias="schema", description="its schema file (default: schema.toml "
                                    "beside the data; none there: the simulator's schema)")
    assign_nsos: int | None = Field(None, ge=1, le=1000, description="spread the persons of a table without an "
                                    "nso column over this many NSOs, stratified by label, by the experiment seed")
    generate: GeneratorSettings = Field(default_factory=GeneratorSettings)
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of each NSO's persons for local testing")
    holdout_fraction: float = Field(0.1, gt=0, lt=1, description="share held out for central evaluation")

    @model_validator(mode="after")
    def _fractions(self) -> "DataConfig":
        if self.test_fraction + self.holdout_fraction >= 1:
            raise ValueError(f"test_fraction + holdout_fraction = {self.test_fraction + self.holdout_fraction} "
                             "must be below 1")
        if self.path is None and (self.schema_file or self.assign_nsos):
            raise ValueError("data.schema and data.assign_nsos apply to imported data: set data.path too")
        return self


class EngineConfig(BaseModel):
    """[engine]: what runs the ServerApp and the ClientApps."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["local", "ray", "centralized", "deployment"] = "local"
    ray_num_cpus: int = Field(2, ge=1, le=1024, description="CPUs Ray may use (ray engine)")
    local_workers: int | None = Field(None, ge=1, le=1024, description="local engine: worker processes that train NSOs "
                                                                        "at once (default: one per core; 1 under SecAgg+); results do not change")
    deployment_runtime: Literal["persistent", "flower"] = Field(
        "persistent", description="deployment engine: 'persistent' - one long-lived ClientApp process per SuperNode "
                                  "and a 0.1 s idle poll (simulation/engines/clientapp_worker.py, supernode.py); 'flower' - "
                                  "Flower's own SuperNode: a new ClientApp process per message, a 3 s idle wait")


class OutputConfig(BaseModel):
    """[output]"""

    model_config = ConfigDict(extra="forbid")

    dir: str = Field("runs", description="parent directory of run directories")
    message_log: bool = Field(False, description="log every reply the server receives (messages.jsonl), to check "
                              "what travels in the clear")


class ExperimentConfig(BaseModel):
    """A whole experiment (docs/config.md)."""

    def _persons(self) -> int:
        """Persons of simulated data (imported data: not known before reading; no limit)."""
        return 10**9 if self.data.path else sum(self.data.generate.persons_per_nso().values())

    @model_validator(mode="after")
    def _dropout_nsos(self) -> "ExperimentConfig":
        if self.privacy.enabled and self.federation.strategy == "fedprox":
            raise ValueError("federation.strategy = 'fedprox' with privacy.enabled: the proximal term is not "
                             "implemented in DP-SGD training; use 'fedavg' or 'fedadam' with DP")
        check_federation_scope(self.privacy, self.secure_aggregation.enabled, self.federation.strategy,
                               self.federation.fraction_fit)
        if self.inference.enabled and self.data.path and not self.inference.sensor_only_path:
            raise ValueError("inference.enabled with data.path needs inference.sensor_only_path: the NSOs' own "
                             "sensor-only persons (a table without diaries, `ppml data import --sensor-only`); "
                             "the simulator's would not match imported data")
        if self.inference.publish == "pooled" and not self.secure_aggregation.enabled:
            raise ValueError("inference.publish = 'pooled' needs secure_aggregation.enabled = true: each NSO's sums "
                             "carry only a share of the noise, and only their SecAgg+ sum may leave the NSOs")
        if self.audit.enabled and self.audit.canaries > 10 * max(1, self._persons()):
            raise ValueError(f"audit.canaries = {self.audit.canaries}: more than 10x the persons of the data; the "
                             "canaries would be most of what is trained on")
        if self.inference.enabled and self.engine.name == "centralized":
            raise ValueError("inference.enabled with engine.name = 'centralized': time-use estimation runs in the NSOs "
                             "of a federation; use local, ray or deployment")
        if self.secure_aggregation.dropouts and not self.data.path:
            unknown = sorted({d.nso for d in self.secure_aggregation.dropouts} - set(self.data.generate.nsos))
            if unknown:
                raise ValueError(f"secure_aggregation.dropouts names NSO(s) {unknown} that are not in "
                                 f"data.generate.nsos {self.data.generate.nsos}")
        return self

    model_config = ConfigDict(extra="forbid")

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9_.-]+$", description="used in run directory names")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of training, splits and sampling")
    randomness: Literal["auto", "reproducible", "secure"] = Field(
        "auto", description="DP noise and sampling: secure = OS entropy in each NSO (no other party can replay it); "
                            "reproducible = from a node secret derived from the seed (simulation studies, no "
                            "guarantee against whoever holds the config); auto = secure on the deployment engine, "
                            "reproducible otherwise")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    secure_aggregation: SecureAggregationConfig = Field(default_factory=SecureAggregationConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @property
    def randomness_mode(self) -> str:
        """The mode `auto` stands for on this config's engine (docs/privacy.md, "Randomness")."""
        if self.randomness != "auto":
            return self.randomness
        return "secure" if self.engine.name == "deployment" else "reproducible"


def format_validation_error(exc: ValidationError, source: str, prefix: str = "") -> str:
    return "\n".join([f"{source}: invalid config", *validation_lines(exc, prefix)])


def parse_set(items: list[str]) -> dict[str, Any]:
    """Turn ['a.b=3', 'c="x"'] into a nested dict; values are parsed as TOML (strings may be bare)."""
    pairs: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set training.rounds=5")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: the key {key!r} is not a dotted config key")
        try:
            pairs[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            pairs[key] = raw
    try:
        return nest(pairs)
    except ValueError as exc:
        raise ConfigError(f"--set: {exc}") from None


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def read_toml(path: Path | str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such config file")
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory; a TOML config file is expected")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file; a TOML config file is expected") from None


def resolve_data_files(raw: dict[str, Any], relative_to: Path) -> None:
    """data.path, data.schema and inference.sensor_only_path name files relative to the config file
    that names them (as given, relative to the working directory, when nothing is there)."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    inference = raw.get("inference") if isinstance(raw.get("inference"), dict) else {}
    for table, key in [(data, k) for k in ("path", "schema", "schema_file")] + [(inference, "sensor_only_path")]:
        value = table.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            candidate = relative_to / value
            table[key] = str(candidate.resolve() if candidate.exists() else Path(value))


def load_config(path: Path | str | None, overrides: list[str] | None = None,
                model: type[BaseModel] = ExperimentConfig) -> BaseModel:
    """Read, merge --set overrides, validate; raise ConfigError naming every bad key."""
    raw = read_toml(path) if path is not None else {}
    if "sweep" in raw:
        raise ConfigError(f"{path}: is a sweep file (it has a [sweep] table); run it with `ppml sweep {path}`")
    raw = deep_merge(raw, parse_set(overrides or []))
    resolve_data_files(raw, Path(path).parent if path is not None else Path.cwd())
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path) if path else "config")) from None

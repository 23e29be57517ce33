"""[coverage]: a coverage measurement by private set intersection (docs/coverage.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datasets.synthetic.registers import RegisterSettings

from .keys import MATCH_KEYS

PROTOCOL = "nso-ppml-coverage/1"
NORMALISATION = "v1"  # how keys are normalised on both sides (coverage_psi/keys.py)


class ProtocolSettings(BaseModel):
    """What both parties must agree on before any key is exchanged."""

    model_config = ConfigDict(extra="forbid")

    fpr: float = Field(1e-9, gt=0, lt=0.01, description="false-positive rate of the PSI set structure")
    data_structure: Literal["raw", "gcs", "bloom_filter"] = "gcs"
    pad_to: int | None = Field(None, ge=1, description="the third party pads its set to this size with random "
                               "dummies, so that its size stays hidden (default: 2 x the NSO's set)")
    method: Literal["ecdh-p256", "x25519"] = Field(
        "ecdh-p256", description="ecdh-p256: OpenMined's ECDH-PSI on P-256; x25519: DH-PSI on Curve25519 with "
                                 "libsodium, grouped so that several match keys count as a union")
    match_keys: list[str] = Field(["exact"], min_length=1, description="a person matches if any of these keys "
                                  f"agrees: {', '.join(MATCH_KEYS)} (more than one needs method = 'x25519')")
    workers: int = Field(2, ge=1, le=64, exclude=True, description="x25519: processes for each party's "
                                                                    "exponentiations (local, not agreed)")

    @model_validator(mode="after")
    def _keys(self) -> "ProtocolSettings":
        unknown = [k for k in self.match_keys if k not in MATCH_KEYS]
        if unknown:
            raise ValueError(f"match_keys {unknown}: allowed {', '.join(MATCH_KEYS)}")
        if len(set(self.match_keys)) != len(self.match_keys):
            raise ValueError(f"match_keys {self.match_keys} names a key twice")
        if self.method == "ecdh-p256" and self.match_keys != ["exact"]:
            raise ValueError(f"match_keys {self.match_keys} with method = 'ecdh-p256': OpenMined's PSI shuffles every "
                             "key alone, so it can count matches per key but not persons matched by any key; use "
                             "method = 'x25519', or match_keys = ['exact']")
        return self


class DesignSettings(BaseModel):
    """Which NSO persons take part: the whole register, or a survey sample drawn from it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["register", "survey"] = "register"
    sample_size: int = Field(10_000, ge=10, description="survey: persons sampled from the register")
    design_effect: float = Field(1.0, ge=1.0, le=20.0, description="survey: variance inflation of the design")
    clerical_sample: int = Field(500, ge=0, le=100_000, description="consented persons whose records are linked "
                                 "clerically, to estimate the match rate (0: no key-error correction)")


class CoverageConfig(BaseModel):
    """A whole coverage experiment (TOML with a [coverage] table)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("coverage", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="design sample, clerical sample and release noise")
    data: RegisterSettings = Field(default_factory=RegisterSettings)
    design: DesignSettings = Field(default_factory=DesignSettings)
    protocol: ProtocolSettings = Field(default_factory=ProtocolSettings)
    epsilon: float | Literal["none"] = Field(1.0, description="DP on the released matched count (pure epsilon, "
                                             "replacing one register person); 'none' = the exact count, for studies")
    randomness: Literal["reproducible", "secure"] = Field(
        "reproducible", description="the release noise: from the seed (a simulated run) or OS entropy in the NSO")
    min_nso_keys: int = Field(100, ge=1, description="the third party refuses NSO key sets smaller than this")
    tls: bool = True
    timeout_s: float = Field(600.0, gt=0, le=86_400, description="how long a party waits for the other")
    output_dir: str = "runs"

    @property
    def release_epsilon(self) -> float | None:
        return None if self.epsilon == "none" else float(self.epsilon)

    @model_validator(mode="after")
    def _sizes(self) -> "CoverageConfig":
        if self.epsilon != "none" and not 0 < self.epsilon <= 100:
            raise ValueError(f"epsilon = {self.epsilon}: allowed 0 < epsilon <= 100, or 'none' for the exact count")
        if self.design.kind == "survey" and self.design.sample_size > self.data.register_size:
            raise ValueError(f"design.sample_size = {self.design.sample_size} exceeds data.register_size = "
                             f"{self.data.register_size}")
        if self.design.clerical_sample > self.data.register_size:
            raise ValueError(f"design.clerical_sample = {self.design.clerical_sample} exceeds the register")
        return self

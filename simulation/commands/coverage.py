"""`ppml coverage serve|measure|run`: the coverage use case's two parties and whole simulated runs
(coverage_psi/, docs/coverage.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from datasets.errors import UserError, validation_lines

from ..config import ConfigError, read_toml


def _protocol(args: argparse.Namespace):
    from coverage_psi.config import ProtocolSettings

    try:
        return ProtocolSettings(fpr=args.fpr, data_structure=args.structure, pad_to=args.pad_to, method=args.method,
                                match_keys=[k.strip() for k in args.match_keys.split(",")], workers=args.workers)
    except ValidationError as exc:
        raise UserError("\n".join(["invalid protocol settings:", *validation_lines(exc, "", "docs/coverage.md")])) from None


def _serve(args: argparse.Namespace, console: Console) -> int:
    from coverage_psi.third_party import ServeArgs, serve

    if (args.cert is None) != (args.key is None):
        raise UserError("--cert and --key go together (TLS), or neither")
    if args.min_nso_keys < 1:
        raise UserError(f"--min-nso-keys {args.min_nso_keys}: must be at least 1")
    learned = serve(ServeArgs(Path(args.source), Path(args.out), _protocol(args), args.port,
                              Path(args.ready_file) if args.ready_file else None, _path(args.cert), _path(args.key),
                              args.timeout, _path(args.transcript), args.min_nso_keys))
    console.print(f"third party: served an NSO with {learned['nso_keys']:,} keys; released coverage "
                  f"{learned['released']['coverage']:.4f}")
    return 0


def _measure(args: argparse.Namespace, console: Console) -> int:
    from coverage_psi.config import DesignSettings
    from coverage_psi.nso import MeasureArgs, measure

    try:
        design = DesignSettings(kind=args.design, sample_size=args.sample_size, design_effect=args.deff)
    except ValidationError as exc:
        raise UserError("\n".join(["invalid design:", *validation_lines(exc, "", "docs/coverage.md")])) from None
    epsilon = _epsilon(args.epsilon)
    out = measure(MeasureArgs(Path(args.register), args.connect, Path(args.out), _protocol(args), design,
                              _path(args.clerical), epsilon, args.seed, _path(args.ca), args.timeout,
                              _path(args.transcript), args.randomness))
    e = out["estimate"]
    console.print(f"NSO: coverage {e['coverage']:.4f} (95 % interval {e['ci_low']:.4f}-{e['ci_high']:.4f}) of "
                  f"{out['persons']:,} persons")
    return 0


def _run(args: argparse.Namespace, console: Console) -> int:
    from coverage_psi.config import CoverageConfig
    from coverage_psi.run import run_coverage

    raw = read_toml(args.config)
    if set(raw) != {"coverage"}:
        raise ConfigError(f"{args.config}: a coverage config holds one [coverage] table (docs/coverage.md)")
    try:
        cfg = CoverageConfig.model_validate(raw["coverage"])
    except ValidationError as exc:
        raise ConfigError("\n".join([f"{args.config}: invalid config", *validation_lines(exc, "coverage.",
                                                                                       "docs/coverage.md")])) from None
    run_dir = run_coverage(cfg, args.out)
    c = json.loads((run_dir / "summary.json").read_text())["coverage"]
    console.print(f"coverage {c['coverage']:.4f} (95 % interval {c['ci_low']:.4f}-{c['ci_high']:.4f}; without the "
                  f"key-error correction {c['coverage_uncorrected']:.4f}); true {c['true_coverage']:.4f}; "
                  f"{(c['bytes_nso_sent'] + c['bytes_third_party_sent']) / 1e6:.1f} MB exchanged in "
                  f"{c['protocol_seconds']:.1f} s; run directory {run_dir}")
    return 0


def _epsilon(text: str) -> float | None:
    if text == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100:
        raise UserError(f"--epsilon {text}: allowed 0 < epsilon <= 100, or 'none' for the exact count")
    return value


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def run(args: argparse.Namespace, console: Console) -> int:
    return {"serve": _serve, "measure": _measure, "run": _run}[args.coverage_command](args, console)

"""`ppml coverage run CONFIG`: a whole simulated measurement - the lists, the two parties as two
processes talking over 127.0.0.1 (TLS by default), the evaluation against the truth - in a run
directory like the federated runs'. Both processes are stopped by PID on success, error and Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import json
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from datasets.atomic import write_json
from datasets.errors import UserError
from datasets.synthetic.registers import simulate_registers
from simulation.engines.pki import make_tls
from simulation.engines.processes import Processes
from simulation.results.manifest import manifest
from simulation.results.run_dir import default_run_dir, new_run_dir

from .config import CoverageConfig
from .keys import match_keys
from .psi import version

COLUMNS = ["first_name", "surname", "birth_date", "postcode", "national_id"]


def _write_inputs(cfg: CoverageConfig, run_dir: Path) -> dict:
    """The simulated lists, each in its party's folder, a clerical sample for the NSO, and the truth."""
    sim = simulate_registers(cfg.data)
    nso, third = run_dir / "nso", run_dir / "third_party"
    nso.mkdir()
    third.mkdir()
    sim.register[COLUMNS].to_csv(nso / "register.csv", index=False)
    sim.source[COLUMNS].to_csv(third / "source.csv", index=False)
    rng = np.random.default_rng([cfg.seed, 0xC1E])
    measured = np.arange(cfg.data.register_size)
    if cfg.design.kind == "survey":  # the same sample the NSO process draws (coverage_psi/nso.py)
        measured = np.sort(np.random.default_rng([cfg.seed, 0x5A]).choice(cfg.data.register_size,
                                                                          cfg.design.sample_size, replace=False))
    if cfg.design.clerical_sample:
        consented = rng.choice(measured, min(cfg.design.clerical_sample, len(measured)), replace=False)
        kinds = tuple(cfg.protocol.match_keys)  # the clerk records whether any of the match keys agrees
        source_keys = set(match_keys(sim.source, "source", kinds).ravel().tolist())
        groups = match_keys(sim.register.iloc[consented], "register", kinds)
        pd.DataFrame({"in_source": sim.in_source[consented],
                      "key_matches": [any(k in source_keys for k in g) for g in groups]}).to_csv(
            nso / "clerical.csv", index=False)
    return {"true_coverage": sim.true_coverage, "true_coverage_measured": float(sim.in_source[measured].mean()),
            "register_size": cfg.data.register_size, "source_records": len(sim.source)}


def _commands(cfg: CoverageConfig, run_dir: Path, tls: dict | None) -> tuple[list[str], list[str]]:
    p = cfg.protocol
    pad_to = p.pad_to if p.pad_to is not None else 2 * cfg.data.register_size * len(p.match_keys)
    common = ["--fpr", repr(p.fpr), "--structure", p.data_structure, "--pad-to", str(pad_to),
              "--timeout", repr(cfg.timeout_s), "--method", p.method, "--match-keys", ",".join(p.match_keys),
              "--workers", str(p.workers)]
    ppml = [sys.executable, "-m", "simulation.cli", "coverage"]
    serve = [*ppml, "serve", "--source", str(run_dir / "third_party" / "source.csv"), "--port", "0",
             "--ready-file", str(run_dir / "third_party" / "port"), "--out", str(run_dir / "third_party" / "learned.json"),
             "--transcript", str(run_dir / "third_party" / "transcript.bin"), *common]
    measure = [*ppml, "measure", "--register", str(run_dir / "nso" / "register.csv"), "--out",
               str(run_dir / "nso" / "result.json"), "--transcript", str(run_dir / "nso" / "transcript.bin"),
               "--design", cfg.design.kind, "--sample-size", str(cfg.design.sample_size), "--deff",
               repr(cfg.design.design_effect), "--seed", str(cfg.seed), "--randomness", cfg.randomness,
               "--epsilon", "none" if cfg.release_epsilon is None else repr(cfg.release_epsilon), *common]
    serve += ["--min-nso-keys", str(cfg.min_nso_keys)]
    if (run_dir / "nso" / "clerical.csv").exists():
        measure += ["--clerical", str(run_dir / "nso" / "clerical.csv")]
    if tls:
        serve += ["--cert", str(tls["cert"]), "--key", str(tls["key"])]
        measure += ["--ca", str(tls["ca"])]
    return serve, measure


def _wait_port(path: Path, proc, log: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if proc.poll() is not None:
            raise UserError(f"the third party's process exited with code {proc.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise UserError(f"the third party did not listen within {timeout:g} s; see {log}")
        time.sleep(0.05)
    return int(path.read_text())


def _finish(name: str, proc: subprocess.Popen, deadline: float, log: Path) -> None:
    """Wait for one party's process; its failure is the run's, with the party's own last words."""
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:  # stopped by the caller, by PID
        raise UserError(f"the {name} did not finish in time; see {log}") from None
    if proc.returncode != 0:
        raise UserError(f"the {name} failed (exit code {proc.returncode}): {log.read_text()[-2000:].strip()}")


def run_coverage(cfg: CoverageConfig, out_dir: Path | str | None = None) -> Path:
    start = time.perf_counter()
    run_dir = new_run_dir(Path(out_dir) if out_dir else default_run_dir(cfg.output_dir, cfg.name, cfg.seed))
    (run_dir / "config.toml").write_text(tomli_w.dumps({"coverage": cfg.model_dump(exclude_none=True)}))
    truth = _write_inputs(cfg, run_dir)
    tls = make_tls(run_dir / "certs") if cfg.tls else None
    serve, measure = _commands(cfg, run_dir, tls)
    procs = Processes(run_dir / "logs", dict(os.environ))
    try:
        third = procs.start("third_party", serve)
        port = _wait_port(run_dir / "third_party" / "port", third, run_dir / "logs" / "third_party.log", cfg.timeout_s)
        nso = procs.start("nso", [*measure, "--connect", f"127.0.0.1:{port}"])
        deadline = time.monotonic() + cfg.timeout_s
        _finish("NSO's process", nso, deadline, run_dir / "logs" / "nso.log")
        _finish("third party's process", third, deadline, run_dir / "logs" / "third_party.log")
    finally:
        procs.stop_all()
    return _summarise(cfg, run_dir, truth, time.perf_counter() - start)


def _summarise(cfg: CoverageConfig, run_dir: Path, truth: dict, wall_s: float) -> Path:
    nso = json.loads((run_dir / "nso" / "result.json").read_text())
    third = json.loads((run_dir / "third_party" / "learned.json").read_text())
    est = nso["estimate"]
    target = truth["true_coverage"]
    summary = {"name": cfg.name, "seed": cfg.seed, "kind": "coverage", "coverage": {
        **est, "true_coverage": target, "true_coverage_measured": truth["true_coverage_measured"],
        "interval_holds_truth": est["ci_low"] <= target <= est["ci_high"], "error": est["coverage"] - target,
        "error_uncorrected": est["coverage_uncorrected"] - target, "matched": nso["matched"],
        "register_size": truth["register_size"], "source_records": truth["source_records"],
        "bytes_nso_sent": nso["bytes_sent"], "bytes_third_party_sent": third["bytes_sent"],
        "protocol_seconds": nso["seconds"], "wall_s": round(wall_s, 3), "psi_version": version(cfg.protocol.method),
        "method": cfg.protocol.method, "match_keys": cfg.protocol.match_keys,
        "persons_by_keys_agreeing": nso.get("persons_by_keys_agreeing"),
        "randomness": nso["randomness"], "min_nso_keys": cfg.min_nso_keys,
        "third_party_learned": {k: third[k] for k in ("nso_keys", "released")}}}
    write_json(run_dir / "summary.json", summary)
    write_json(run_dir / "manifest.json", manifest(seed=cfg.seed, engine="coverage-psi",
                                                           psi=version(cfg.protocol.method)))
    return run_dir

"""The `ppml` command line. Bad input ends in one clear message and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console
from rich.markup import escape

from datasets.errors import UserError

console = Console(stderr=True)


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate, import and describe NSO datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="{generate,describe,import,convert}")
    gen = dsub.add_parser("generate", help="simulate the NSOs' sensor data and write it in the table format")
    gen.add_argument("config", nargs="?", help="experiment config (TOML); its [data.generate] section is used")
    gen.add_argument("--out", default="runs/data", help="output directory (default: runs/data)")
    gen.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    gen.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set data.generate.seed=3")
    desc = dsub.add_parser("describe", help="per NSO: persons, windows, minutes per activity vs the fact sheet")
    desc.add_argument("path", help="dataset directory or window file (.parquet/.csv)")
    desc.add_argument("--schema", help="schema file (default: schema.toml beside the data, else the simulator's)")
    imp = dsub.add_parser("import", help="validate a window table against its schema and write a dataset directory")
    imp.add_argument("source", help="window file (.parquet/.csv) or dataset directory")
    imp.add_argument("--out", required=True, help="output dataset directory")
    imp.add_argument("--schema", help="schema file (default: schema.toml beside the data, else the simulator's)")
    imp.add_argument("--nsos", type=int, help="spread the persons of a table without an nso column over N NSOs "
                                              "(stratified by label)")
    imp.add_argument("--seed", type=int, default=0, help="seed of that assignment (default 0)")
    imp.add_argument("--sensor-only", action="store_true", help="a sensor-only sample: persons who wore the devices "
                     "and kept no diary (no label column), for time-use estimation (inference.sensor_only_path)")
    imp.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    conv = dsub.add_parser("convert", help="a public wearable dataset shipped by a registry package, as a dataset")
    conv.add_argument("name", help="dataset: seglearn-watch (2-s windows), seglearn-watch-recordings (one window per "
                      "recording, 80 recordings: a small real table)")
    conv.add_argument("--out", required=True, help="output dataset directory")
    conv.add_argument("--window-seconds", type=float, default=2.0, help="window length (default 2 s)")
    conv.add_argument("--format", choices=("parquet", "csv"), default="parquet")


# benchmark -> (help, its options as (flag, default)); every benchmark also takes --json FILE
BENCHES = {
    "data": ("time and memory of generating >= 1,000,000 windows on one core", [("--windows", 1_000_000)]),
    "fl": ("local engine overhead: 10 NSOs x 20 rounds vs the same work called directly, and on every core",
           [("--rounds", 20), ("--repeats", 2)]),
    "dp": ("DP-SGD vs non-private time per epoch, default model (target <= 2x)", [("--repeats", 3)]),
    "secagg": ("SecAgg+ round vs plain round, 10 NSOs, local engine (target <= 1.5x)",
               [("--rounds", 3), ("--repeats", 2)]),
    "techniques": ("plain FedAvg vs SecAgg+ vs CKKS aggregation at 3, 8, 16 NSOs: round time, key set-up, bytes, "
                   "macro-F1, trust (target: CKKS <= 3x SecAgg+ at 8 NSOs)", [("--rounds", 3)]),
    "runs": ("whole runs: DP and SecAgg+ vs non-private wall time, time shares, round growth", [("--rounds", 30)]),
    "utility": ("macro-F1 drop of record- and person-level epsilon 8 vs non-private; each shipped "
                "recipe at its own rounds unless --rounds", [("--rounds", None)]),
    "scale": ("generation, preparation and training at x1, x4, x16 persons: linear?", [("--rounds", 1)]),
    "deployment": ("a 3-NSO SecAgg+ round: deployment engine vs local (target <= 10x)", [("--rounds", 3)]),
    "peers": ("ppml run against Flower's example recipe (Simulation Engine + Opacus per round)", [("--rounds", 5)]),
    "coverage": ("coverage by PSI end to end, 1M x 1M identifiers, vs a plain hash join", [("--size", 1_000_000)]),
    "audit": ("one-run canary audit and membership inference: leak detected, DP runs never above, cost",
              [("--seeds", 2), ("--rounds", 30)]),
    "time_use": ("time-use estimates over seeds and replicated samples: PPI++ vs the diary sample and "
                 "classify-and-count, interval coverage per row type, DP cost",
                 [("--seeds", 3), ("--rounds", 30), ("--replications", 50)]),
    "small_data": ("the embedded defaults vs the tuned recipe on two small real tables (target: within 5 points)",
                   [("--seeds", 5)]),
}


def _add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks of the project's speed and memory targets")
    bsub = bench.add_subparsers(dest="bench_command", required=True, metavar="{" + ",".join(BENCHES) + "}")
    for name, (text, options) in BENCHES.items():
        b = bsub.add_parser(name, help=text)
        for flag, default in options:
            b.add_argument(flag, type=int, default=default,
                           help="default: each config's own" if default is None else f"default {default:,}")
        b.add_argument("--json", help="also write the results to this JSON file")


def _add_run(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run one experiment and write its run directory")
    r.add_argument("config", nargs="?", help="experiment config (TOML); defaults apply without one")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set federation.rounds=5")
    r.add_argument("--out", help="run directory (default: <output.dir>/<name>-<time>-seed<seed>)")
    r.add_argument("--quiet", action="store_true", help="no per-round progress lines")


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    sw = sub.add_parser("sweep", help="run every point of a sweep file (resumable) and write results.csv")
    sw.add_argument("sweep", help="sweep file (TOML with a [sweep] table)")
    sw.add_argument("--out", help="sweep directory (default: runs/sweeps/<name>)")
    sw.add_argument("--workers", type=int, help="parallel worker processes (default: the file's sweep.workers)")
    sw.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                    help="run the points as Ray tasks: on the cluster at ADDRESS, or without one on a local Ray "
                         "instance of --workers CPUs bound to 127.0.0.1")
    rp = sub.add_parser("report", help="Markdown report with figures from a sweep directory")
    rp.add_argument("sweep_dir")


def _add_estimate(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("estimate", help="time-use statistics from a finished run's model (docs/time_use.md)")
    e.add_argument("run_dir", help="directory of a finished `ppml run`")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set inference.epsilon=1")
    e.add_argument("--out", help="output directory (default: RUN_DIR/estimates/<time>)")
    e.add_argument("--quiet", action="store_true")


def _protocol_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fpr", type=float, default=1e-9, help="PSI false-positive rate (both sides must agree)")
    p.add_argument("--structure", default="gcs", help="PSI set structure: gcs, raw or bloom_filter (agreed)")
    p.add_argument("--pad-to", type=int, help="the third party's set is padded to this size (agreed)")
    p.add_argument("--method", default="ecdh-p256", help="PSI protocol: ecdh-p256 (OpenMined) or x25519 (agreed)")
    p.add_argument("--match-keys", default="exact", help="comma-separated match keys, a person matching if any "
                                                         "agrees (agreed; docs/coverage.md)")
    p.add_argument("--workers", type=int, default=2, help="x25519: processes for this party's exponentiations")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the other party")
    p.add_argument("--transcript", help="keep every frame sent and received in this file")


def _add_coverage(sub: argparse._SubParsersAction) -> None:
    cov = sub.add_parser("coverage", help="coverage of a third party's list by private set intersection")
    csub = cov.add_subparsers(dest="coverage_command", required=True, metavar="{serve,measure,run}")
    serve = csub.add_parser("serve", help="the third party: answer one NSO's PSI on 127.0.0.1")
    serve.add_argument("--source", required=True, help="the third party's list (CSV)")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    serve.add_argument("--ready-file", help="write the port here once listening")
    serve.add_argument("--out", required=True, help="JSON file: what the third party learned")
    serve.add_argument("--cert", help="TLS certificate (PEM)")
    serve.add_argument("--key", help="TLS private key (PEM)")
    serve.add_argument("--min-nso-keys", type=int, default=100, help="refuse NSO key sets smaller than this")
    _protocol_options(serve)
    m = csub.add_parser("measure", help="the NSO: measure the coverage of its register (or a sample)")
    m.add_argument("--register", required=True, help="the NSO's register or survey frame (CSV)")
    m.add_argument("--connect", required=True, help="127.0.0.1:PORT of the third party")
    m.add_argument("--out", required=True, help="JSON file: the estimate and the exchange")
    m.add_argument("--clerical", help="clerical sample (CSV: in_source, key_matches) for the match rate")
    m.add_argument("--design", choices=("register", "survey"), default="register")
    m.add_argument("--sample-size", type=int, default=10_000, help="survey: persons sampled from the register")
    m.add_argument("--deff", type=float, default=1.0, help="survey: design effect")
    m.add_argument("--epsilon", default="1.0", help="DP on the released count (default 1; 'none': the exact count)")
    m.add_argument("--randomness", choices=("secure", "reproducible"), default="secure",
                   help="release noise from OS entropy (default) or from --seed (studies; no guarantee)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--ca", help="CA certificate to verify the third party's TLS certificate")
    _protocol_options(m)
    r = csub.add_parser("run", help="a whole simulated measurement: both parties as two processes")
    r.add_argument("config", help="coverage config (TOML with a [coverage] table)")
    r.add_argument("--out", help="run directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ppml", description=__doc__.splitlines()[0].replace("The ", ""))
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{run,estimate,sweep,report,coverage,data,bench}")
    _add_run(sub)
    _add_estimate(sub)
    _add_sweep(sub)
    _add_coverage(sub)
    _add_data(sub)
    _add_bench(sub)
    return parser


COMMANDS = {  # command -> (module in simulation/commands, function)
    "run": ("run", "run"), "estimate": ("estimate", "run"), "sweep": ("sweep", "run"), "report": ("sweep", "report"),
    "data": ("data", "run"), "bench": ("bench", "run"), "coverage": ("coverage", "run"),
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    module, function = COMMANDS[args.command]
    try:
        return getattr(importlib.import_module(f"simulation.commands.{module}"), function)(args, console)
    except UserError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())

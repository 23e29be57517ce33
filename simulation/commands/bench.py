"""`ppml bench ...`: run one benchmark, print its figures and verdict, optionally write JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from datasets.errors import UserError

from ..bench.common import verdict


def _secagg(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.secagg import SECAGG_TARGET_RATIO, bench_secagg

    r = bench_secagg(args.rounds, repeats=args.repeats)
    console.print(f"10 NSOs, default model, local engine, {r['rounds']} rounds, best of {args.repeats}:")
    console.print(f"  plain round {r['plain_round_s']:.3f} s; SecAgg+ round {r['secagg_round_s']:.3f} s: "
                  f"ratio {r['ratio']:.2f} (target <= {SECAGG_TARGET_RATIO}): " + verdict(r["meets_target"]))
    console.print("  SecAgg+ stages (median s per round, training happens inside collect_masked_vectors): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r["secagg_stage_s"].items()))
    return r


def _dp(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.dp import DP_TARGET_RATIO, bench_dp

    r = bench_dp(args.repeats)
    e = r["epoch_s"]
    console.print(f"one epoch, NSO DE ({r['train_windows']:,} training windows, batch {r['batch_size']}, 1 thread):")
    console.print(f"  non-private {e['non_private']:.3f} s; DP-SGD record unit {e['dp_record']:.3f} s "
                  f"({r['ratio']['dp_record']:.2f}x); person unit {e['dp_person']:.3f} s ({r['ratio']['dp_person']:.2f}x)")
    console.print(f"  target <= {DP_TARGET_RATIO}x: " + verdict(r["meets_target"]))
    return r


def _fl(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.fl import FL_TARGET_RATIO, bench_fl

    r = bench_fl(args.rounds, repeats=args.repeats)
    console.print(f"{r['nsos']} NSOs x {r['rounds']} rounds, {r['windows']:,} windows, 1 thread:")
    console.print(f"  same computations called directly: {r['direct_compute_s']:.2f} s "
                  f"(training {r['of_which_training_s']:.2f} s, the rest evaluation and averaging)")
    console.print(f"  local engine (Flower ServerApp + ClientApps): {r['local_engine_s']:.2f} s")
    console.print(f"  overhead ratio {r['overhead_ratio']:.3f} (target <= {FL_TARGET_RATIO}): "
                  + verdict(r["meets_target"]) + f"; against training alone {r['ratio_to_training_only']:.3f}")
    console.print(f"  {r['workers']} worker processes: {r['local_engine_workers_s']:.2f} s, x{r['workers_ratio']:.2f} the "
                  f"one-at-a-time run (target <= {r['workers_target_ratio']}): " + verdict(r["meets_workers_target"]))
    return r


def _data(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.data import DATA_TARGET_SECONDS, bench_data

    r = bench_data(args.windows)
    f, q = r["full"], r["quarter"]
    console.print(f"data generation, 1 core: {f['windows']:,} windows in {f['seconds']:.2f} s "
                  f"({f['windows_per_second']:,} windows/s); target {DATA_TARGET_SECONDS:.0f} s for 1,000,000: "
                  + (verdict(r["meets_target"]) if r["meets_target"] is not None
                     else "not applicable below 1,000,000 windows"))
    console.print(f"memory: {q['table_bytes_per_window']} bytes/window at {q['windows']:,} windows, "
                  f"{f['table_bytes_per_window']} at {f['windows']:,} "
                  f"({'linear' if r['memory_linear'] else 'NOT linear'}); peak RSS {r['peak_rss_mb']} MB")
    return r


def _utility(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.utility import bench_utility

    console.print("privacy cost on the default data, " + (f"{args.rounds} rounds" if args.rounds else
                  "each recipe at its own rounds") + " (four whole runs, several minutes):")
    r = bench_utility(args.rounds, progress=console.print)
    console.print(f"  record-level epsilon 8: drop {r['drop_record_points']:.1f} macro-F1 points (target <= "
                  f"{r['targets']['drop_record_points']:g}): " + verdict(r["meets_target"]["record"]))
    console.print(f"  person-level epsilon 8 (federation scope): drop {r['drop_person_points']:.1f} points (target <= "
                  f"{r['targets']['drop_person_points']:g}): " + verdict(r["meets_target"]["person"]))
    console.print(f"  pooled-data person-level DP ceiling at the same epsilon: drop {r['drop_person_ceiling_points']:.1f} "
                  f"points; the federation is {r['gap_person_to_ceiling_points']:.1f} points below it (target <= "
                  f"{r['targets']['gap_person_to_ceiling_points']:g}): " + verdict(r["meets_target"]["person_ceiling"])
                  + (" (the ceiling is below the federation: its DP-SGD recipe, not a target met)"
                     if r["gap_person_to_ceiling_points"] < 0 else ""))
    return r


def _runs(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.runs import FEDERATION_CONFIG, bench_runs

    console.print(f"whole runs of experiments/baseline.toml, {args.rounds} rounds, one NSO at a time:")
    r = bench_runs(args.rounds, progress=console.print)
    for name, ratio in r["ratio"].items():
        growth = r["runs"][name]["round_growth"]
        console.print(f"  {name}: x{ratio:.2f} the non-private run (target <= {r['targets']['ratio']}): "
                      + verdict(r["meets_target"]["ratio"][name])
                      + f"; last round {growth:+.0%} vs round 2 (target <= +{r['targets']['round_growth']:.0%}): "
                      + verdict(r["meets_target"]["round_growth"][name]))
    fed = r["federation_round"]
    console.print(f"  federation-scope round (experiments/{FEDERATION_CONFIG}): median {fed['round_median_s']:.3f} s "
                  f"(target <= {r['targets']['federation_round_s']} s): " + verdict(r["meets_target"]["federation_round_s"]))
    return r


def _scale(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.scale import bench_scale

    console.print("population x1, x4, x16 (default NSOs), each in a fresh process:")
    r = bench_scale(args.rounds, progress=console.print)
    g = r["per_window_cost_ratio_last_to_first"]
    console.print("  cost per window x16 / x1: " + ", ".join(f"{k} {v:.2f}" for k, v in g.items())
                  + f"; time {'linear' if r['linear_time'] else 'NOT linear'}, memory "
                  + f"{'linear' if r['linear_memory'] else 'NOT linear'} (bytes per added window "
                  + " -> ".join(f"{b:,.0f}" for b in r["marginal_bytes_per_window"])
                  + f"; tolerance {r['tolerance']:.0%})")
    return r


def _peers(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.peers import bench_peers

    console.print(f"8 NSOs, record-level DP at epsilon 8, {args.rounds} rounds: ppml run vs Flower's example recipe:")
    r = bench_peers(args.rounds, progress=console.print)
    console.print(f"  the peer took x{r['time_ratio_peer_to_ours']:.2f} the time; its reported epsilon understates its "
                  f"whole run by x{r['understatement']:.2f}")
    return r


def _deployment(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.deployment import bench_deployment

    console.print(f"3 NSOs, SecAgg+ and DP, {args.rounds} rounds: deployment engine vs local engine:")
    r = bench_deployment(args.rounds, progress=console.print)
    console.print(f"  ratio {r['ratio']:.1f} (target <= {r['target_ratio']:g}): " + verdict(r["meets_target"]))
    return r


def _time_use(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.time_use import bench_time_use

    console.print(f"time-use statistics, default data and model, {args.seeds} seeds x {args.rounds} rounds, "
                  f"{args.replications} replications of the samples per seed:")
    r = bench_time_use(args.seeds, args.rounds, args.replications, progress=console.print)
    t = r["targets"]
    console.print(f"  {'row type':<22}{'default':>8}{'diary':>7}{'CC':>7}{'/diary':>8}{'best':>6}{'/CC':>6}{'coverage':>10}")
    for name, row in r["row_types"].items():
        m = row["mae_minutes"]
        console.print(f"  {name:<22}{m['default']:>8.2f}{m['diary']:>7.2f}{m['cc']:>7.2f}{row['ratio_to_diary']:>8.2f}"
                      f"{row['attainable_ratio_to_diary']:>6.2f}{row['ratio_to_classify_count']:>6.2f}{row['coverage']:>10.1%}")
    console.print("  (mean absolute error in minutes per day against the population; /diary and /CC: the default's "
                  "error relative to the diary sample alone and to classify-and-count; best: the ratio to the diary "
                  "sample that this model allows at best)")
    for key, text in (("ratio_to_diary", f"error <= {t['ratio_to_diary']}x the diary sample alone"),
                      ("ratio_to_classify_count", f"error <= {t['ratio_to_classify_count']}x classify-and-count"),
                      ("coverage", f"coverage {t['coverage'][0]:.0%}-{t['coverage'][1]:.0%}")):
        for name in ("overall", "breakdowns", "pooled"):
            console.print(f"  {text}, {name} rows: " + verdict(r["meets_target"][f"{name}:{key}"]))
    console.print("  epsilon 1, DP release of PPI++ (same replications; x4, x16: every sample that much larger, model fixed):")
    console.print(f"  {'samples':<8}{'rows':<11}{'+error':>7}{'PPI++':>7}{'diary':>7}{'CC':>6}{'cover':>7}"
                  f"{'sensor,diary/cell':>19}")
    for scale, rows in r["dp"].items():
        for name in ("overall", "breakdowns", "pooled"):
            row, m = rows[name], rows[name]["dp_mae_minutes"]
            pc = row["persons_per_cell"]
            persons = f"{pc['sensor']:,.0f}, {pc['trained'] + pc['labelled']:,.0f}" if pc else "all NSOs'"
            console.print(f"  {'x' + scale:<8}{name:<11}{row['dp_growth_minutes']:>7.1f}{m['dp_default']:>7.1f}"
                          f"{m['dp_diary']:>7.1f}{m['dp_cc']:>6.1f}{row['dp_coverage']:>7.1%}{persons:>19}")
        row, m = rows["pooled"], rows["pooled"]["dp_mae_minutes"]
        console.print(f"  {'x' + scale:<8}{'pooled*':<11}{row['dp_pooled_only_growth_minutes']:>7.1f}"
                      f"{m['dp_pooled_only']:>7.1f}{'':>7}{'':>6}{row['dp_pooled_only_coverage']:>7.1%}{'all NSOs':>19}")
    console.print("  (+error: DP PPI++'s mean absolute error minus the non-private one's; PPI++, diary, CC: the DP "
                  "errors of PPI++, of the diary sample alone released as one block, of classify-and-count; minutes "
                  "per day; cover: DP PPI++'s interval coverage; pooled*: publishing only the pooled rows, each NSO "
                  "adding a share of the noise under SecAgg+, inference.publish = 'pooled')")
    for name, bound in t["dp_growth_minutes"].items():
        console.print(f"  epsilon 1 adds <= {bound:g} min on {name} rows (x1): " + verdict(r["meets_target"][f"dp_growth:{name}"]))
    console.print(f"  epsilon 1 adds <= {t['dp_growth_minutes']['pooled']:g} min on pooled rows published alone (x1): "
                  + verdict(r["meets_target"]["dp_growth:pooled_only"]))
    return r


def _small_data(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.small_data import bench_small_data

    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds}: at least 1")
    console.print(f"small real tables (seglearn's smartwatch data), {args.seeds} seeds each: the embedded defaults "
                  "vs the tuned recipe, held-out accuracy:")
    r = bench_small_data(args.seeds, progress=console.print)
    for table, row in r["tables"].items():
        console.print(f"  {table}: defaults {row['defaults']['accuracy']:.3f} vs tuned {row['tuned']['accuracy']:.3f} "
                      f"({row['tuned_config']}): {-row['gap_points']:+.1f} points (target >= "
                      f"-{r['target_points']:g}): " + verdict(row["meets_target"]))
    return r


def _audit(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.audit import bench_audit

    console.print(f"privacy audit on the default data, {args.rounds} rounds, {args.seeds} seeds of the DP runs:")
    r = bench_audit(args.seeds, args.rounds, progress=console.print)
    m = r["meets_target"]
    console.print(f"  non-private run: lower bound {r['non_private']['epsilon_lower_bound']:.2f} (target > 1): "
                  + verdict(m["non_private_detected"]))
    console.print("  epsilon-1 runs: lower bound never above the reported epsilon: " + verdict(m["dp_never_above_reported"]))
    console.print(f"  auditing cost x{r['cost']['ratio']:.2f} an ordinary run (target <= {r['targets']['cost_ratio']}): "
                  + verdict(m["cost"]))
    return r


def _coverage(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.coverage import bench_coverage

    if args.size < 1000:
        raise UserError(f"--size {args.size}: at least 1,000 identifiers")
    console.print(f"coverage by PSI, {args.size:,} register persons against a list of about as many, 2 processes:")
    r = bench_coverage(args.size, progress=console.print)
    console.print(f"  x25519, exact key: {r['identifiers_per_s']:,.0f} identifiers per second (target >= "
                  f"{r['target_identifiers_per_s']:,}): " + verdict(r["meets_target"])
                  + f"; OpenMined's ECDH on P-256 {r['openmined_identifiers_per_s']:,.0f}; x{r['ratio_to_hash_join']:.0f} "
                  "the plain hash join's time")
    return r


def _techniques(args: argparse.Namespace, console: Console) -> dict:
    from ..bench.techniques import bench_techniques

    console.print(f"plain FedAvg, SecAgg+ and CKKS aggregation, default model, local engine, {args.rounds} rounds:")
    r = bench_techniques(args.rounds, progress=console.print)
    console.print("  NSOs  method      round s  key set-up s  KB/NSO/round  macro-F1")
    for n, row in r["table"].items():
        for m in ("plain", "secaggplus", "ckks"):
            x = row[m]
            keys = f"{x['key_setup_s']:.3f}" if x["key_setup_s"] is not None else "in round"
            keys = "-" if m == "plain" else keys
            console.print(f"  {n:>4}  {m:<10}  {x['round_s']:7.3f}  {keys:>12}  {x['bytes_per_nso_round'] / 1e3:12.0f}"
                          f"  {x['macro_f1']:.3f}")
        for m in ("secaggplus", "ckks"):
            console.print(f"        {m} stages (median s; training inside {'collect_masked_vectors' if m != 'ckks' else 'fit'}): "
                          + ", ".join(f"{k} {v:.3f}" for k, v in row[m]["stage_s"].items()))
        c = row["ckks_vs_secagg"]
        f = c["first_round"]
        console.print(f"        ckks / secagg+ round {c['ratio']:.2f}x; after one round the models differ by "
                      f"{f['max_model_difference']:.2g} (allowed {f['allowed']:.2g}: "
                      + verdict(f["max_model_difference"] <= f["allowed"] + 1e-6)
                      + f"), after {r['rounds']} by {c['max_model_difference']:.2g}; macro-F1 by {c['macro_f1_difference']:.3f}")
    at8 = r["table"].get(8, {}).get("ckks_vs_secagg")
    if at8:
        console.print(f"  8 NSOs: CKKS round {at8['ratio']:.2f}x SecAgg+'s (target <= {r['target_ratio']:g}x): "
                      + verdict(r["meets_target"]))
    for m, t in r["trust"].items():
        console.print(f"  {m}: the server learns {t['server_learns']}; collusion tolerated: {t['collusions']}; "
                      f"dropouts: {t['dropouts']}")
    if args.json:
        from ..bench.techniques_figure import techniques_figure

        console.print(f"figure written to {techniques_figure(r, Path(args.json).with_suffix('.png'))}")
    return r


BENCHES = {"techniques": _techniques, "deployment": _deployment, "peers": _peers, "scale": _scale, "secagg": _secagg, "dp": _dp, "fl": _fl, "data": _data, "utility": _utility, "runs": _runs,
           "time_use": _time_use, "audit": _audit, "coverage": _coverage, "small_data": _small_data}


def run(args: argparse.Namespace, console: Console) -> int:
    for option in ("rounds", "repeats", "seeds", "replications"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise UserError(f"--{option} {value}: must be at least 1")
    r = BENCHES[args.bench_command](args, console)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0

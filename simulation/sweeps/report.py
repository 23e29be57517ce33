"""`ppml report SWEEP_DIR`: a Markdown report with PNG figures of a sweep's privacy/utility trade-off.

Figures: the privacy/utility curve (macro-F1 and accuracy against the reported epsilon, mean and
standard deviation over seeds, with the non-private federated line and the centralized ceiling),
accuracy per round, per-NSO accuracy (who pays for privacy), the SecAgg+ time cost, and the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from datasets.errors import UserError

from . import figures
from .select import tuned


def _load(sweep_dir: Path) -> tuple[pd.DataFrame, dict]:
    if not (sweep_dir / "results.csv").exists() or not (sweep_dir / "plan.json").exists():
        raise UserError(f"{sweep_dir}: not a sweep directory (no results.csv / plan.json); run `ppml sweep` first")
    try:
        table = pd.read_csv(sweep_dir / "results.csv")
    except pd.errors.EmptyDataError:
        raise UserError(f"{sweep_dir}: no finished points yet") from None
    if table.empty:
        raise UserError(f"{sweep_dir}: no finished points yet")
    return table, json.loads((sweep_dir / "plan.json").read_text())


def _config_key(table: pd.DataFrame) -> list[str]:
    return ["role"] + [c for c in table.columns if c.startswith("grid.")]


def _filled(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Grid columns with '-' where a point has no value (references), so they group together."""
    return table.assign(**{k: table[k].astype(object).where(table[k].notna(), "-") for k in keys})


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over seeds per configuration."""
    keys = _config_key(table)
    metrics = ["macro_f1", "accuracy", "wellbeing_mae", "epsilon", "round_s"]
    g = _filled(table, keys).groupby(keys, dropna=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["seeds"] = g.size()
    return out.reset_index()


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _labels(table: pd.DataFrame) -> str:
    return ", ".join(c[3:] for c in table.columns if c.startswith("f1."))


def _provenance(sweep_dir: Path, table: pd.DataFrame, plan: dict) -> list[str]:
    """Where the numbers come from: command, versions, commit, data, and how to reproduce a point."""
    first = sweep_dir / "points" / table.point.iloc[0]
    man = json.loads((first / "manifest.json").read_text()) if (first / "manifest.json").exists() else {}
    versions = ", ".join(f"{k} {v}" for k, v in man.get("versions", {}).items() if v)
    git = man.get("git", {})
    summary = json.loads((first / "summary.json").read_text())
    fp, data = summary["data_fingerprint"][:16], summary.get("data", {})
    return [
        f"# Sweep report: {sweep_dir.name}",
        "",
        f"- Command: `{plan.get('command', 'ppml sweep')}`; sweep file: `sweep.toml` in this directory "
        f"(copy of `{plan.get('sweep_file')}`)",
        f"- Points: {len(table)} of {len(plan['points'])} finished; seeds: {sorted(table.seed.unique().tolist())}",
        f"- Versions: {versions}; git commit {git.get('commit')}" + (" (uncommitted changes)" if git.get("dirty") else ""),
        f"- Data fingerprint: {fp}; schema '{data.get('schema', '?')}', {data.get('features', '?')} model inputs, "
        f"labels: {', '.join(data.get('labels', []))}",
        "- Reproduce a point: `ppml run points/<id>/config.toml --out <new dir>` gives the same numbers.",
        "",
    ]


def _time_use_section(sweep_dir: Path, table: pd.DataFrame, points: list[str], out: Path) -> list[str]:
    """Time-use estimates of the first point that made them, against the truth and the fact sheet,
    and every such point's errors, interval coverage and release epsilon."""
    from ..inference.figure import time_use_figure

    first = points[0]
    fig = time_use_figure(pd.read_csv(sweep_dir / "points" / first / "time_use.csv"), out,
                          f"point {first}: overall minutes per day per NSO")
    cols = ["point", "role", "seed"] + [c for c in table.columns if c.startswith(("grid.", "time_use."))]
    return ["## Time-use statistics",
            "Corrected minutes per day with 95 % intervals, classify-and-count, the sensor-only sample's true",
            "minutes and the fact sheet's HETUS minutes (docs/time_use.md).", "", f"![time use]({fig.name})", "",
            _markdown(table[table.point.isin(points)][cols]), ""]


def _optional_sections(sweep_dir: Path, table: pd.DataFrame, out: Path) -> list[str]:
    """Time use, privacy risk and population: only where the sweep's runs made them."""
    lines: list[str] = []
    time_use = [pid for pid in table.point if (sweep_dir / "points" / pid / "time_use.csv").exists()]
    if time_use:
        lines += _time_use_section(sweep_dir, table, time_use, out)
    risk_fig = figures.privacy_risk(table, out)
    if risk_fig:
        lines += ["## Privacy risk (audit)",
                  "Each run's reported epsilon against the empirical lower bound of the one-run canary audit",
                  "(Steinke, Nasr and Jagielski 2023; 95 % confidence: a point above the diagonal would prove the",
                  "mechanism broken) and against the AUC of a loss-threshold membership attack on the real",
                  "persons (0.5 = guessing). A lower bound far below the reported epsilon is expected: with m",
                  "canaries even perfect guessing bounds epsilon at a few units (docs/privacy.md).", "",
                  f"![privacy risk]({risk_fig.name})", ""]
    pop_fig = figures.population(table, out)
    if pop_fig:
        lines += ["## Population", "Macro-F1 against the number of persons per NSO (x the default population): how",
                  "many participants a privacy target needs.", "", f"![population]({pop_fig.name})", ""]
    return lines


def write_report(sweep_dir: Path | str) -> Path:
    sweep_dir = Path(sweep_dir)
    table, plan = _load(sweep_dir)
    out = sweep_dir / "report"
    out.mkdir(exist_ok=True)
    if "coverage.coverage" in table.columns:
        from .coverage_report import coverage_sections

        lines = [f"# Sweep report: {sweep_dir.name}", "", f"- Command: `{plan.get('command', 'ppml sweep')}`; "
                 f"points: {len(table)} of {len(plan['points'])} finished", "",
                 *coverage_sections(table, out, _markdown)]
        (out / "report.md").write_text("\n".join(lines))
        return out / "report.md"
    curves = {pid: pd.read_csv(sweep_dir / "points" / pid / "metrics.csv").set_index("round")["central.accuracy"]
              for pid in table.point}
    figs = [figures.privacy_utility(table, out), figures.rounds(table, curves, out), figures.per_nso_heatmap(table, out),
            figures.per_class_heatmap(table, out)]
    sec_fig, sec_text = figures.secagg_cost(table, out)
    lines = _provenance(sweep_dir, table, plan) + [
        "## Privacy/utility",
        "Macro-F1 and accuracy on the held-out persons of all NSOs after the last round, against the",
        "epsilon each run reported (largest over NSOs), mean and SD over seeds. Dashed: non-private",
        "federated; dotted: the same model trained centrally on the pooled data (the ceiling).",
        "",
        f"![privacy/utility]({figs[0].name})",
        "",
        "## Accuracy per round",
        f"![accuracy per round]({figs[1].name})",
        "",
        "## Per-NSO accuracy",
        "Each NSO's model accuracy on its own test persons: where privacy costs most.",
        "",
        f"![per-NSO accuracy]({figs[2].name})",
        "",
        *(["## Per-label F1", f"F1 of each of the dataset's labels ({_labels(table)}) on the held-out persons.", "",
           f"![per-label F1]({figs[3].name})", ""] if figs[3] else []),
        "## SecAgg+ time cost",
        sec_text,
        "",
    ]
    if sec_fig:
        lines += [f"![SecAgg+ cost]({sec_fig.name})", ""]
    lines += _optional_sections(sweep_dir, table, out)
    best = tuned(table)
    if not best.empty:
        lines += ["## Tuned frontier (chosen on validation persons)",
                  "Per privacy setting, the hyperparameters with the best mean macro-F1 on the NSOs' test persons",
                  "(validation), and that choice's scores on the held-out persons, a disjoint set. The tuning",
                  "itself is not accounted: strictly, the chosen model's privacy cost is that of all trials.",
                  "", _markdown(best), ""]
    lines += ["## Results (mean and SD over seeds)", "", _markdown(summarise(table)), "",
              "Per-run rows: `../results.csv`; per-round metrics: `points/<id>/metrics.csv`.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path

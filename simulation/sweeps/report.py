"""`ppml report SWEEP_DIR`: a Markdown report with PNG figures of a sweep's privacy/utility trade-off.

Figures: the privacy/utility curve (macro-F1 and accuracy against the reported epsilon, mean and
standard deviation over seeds, with the non-private federated line and the centralized ceiling),
accuracy per round, per-NSO accuracy (who pays for privacy), the SecAgg+ time cost, and the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from datasets.errors import UserError  # noqa: E402

EPSILON_KEYS = ("grid.privacy.target_epsilon", "grid.privacy.noise_multiplier")


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


def _series_keys(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("grid.") and c not in EPSILON_KEYS]


def _label(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{k.removeprefix('grid.')}={row[k]}" for k in keys) or "all"


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


def _reference_lines(ax, table: pd.DataFrame, metric: str) -> None:
    for role, style, name in (("non_private", "--", "non-private federated"), ("centralized", ":", "centralized ceiling")):
        ref = table[table.role == role][metric]
        if len(ref):
            ax.axhline(ref.mean(), color="black", linestyle=style, linewidth=1.2,
                       label=f"{name} ({ref.mean():.3f})")
            if len(ref) > 1:
                ax.axhspan(ref.mean() - ref.std(), ref.mean() + ref.std(), color="grey", alpha=0.12)


def fig_privacy_utility(table: pd.DataFrame, out: Path) -> Path:
    grid = table[table.role == "grid"]
    keys = _series_keys(table)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, metric, title in ((axes[0], "macro_f1", "Macro-F1"), (axes[1], "accuracy", "Accuracy")):
        for name, sub in (grid.groupby(keys, dropna=False) if keys else [("all", grid)]):
            conf = sub.groupby([c for c in sub.columns if c in EPSILON_KEYS] or ["role"], dropna=False)
            stats = conf.agg(eps=("epsilon", "mean"), m=(metric, "mean"), s=(metric, "std")).sort_values("eps")
            finite = stats[np.isfinite(stats.eps)]
            label = _label(sub.iloc[0], keys)
            ax.errorbar(finite.eps, finite.m, yerr=finite.s.fillna(0), marker="o", capsize=3, label=label)
        _reference_lines(ax, table, metric)
        ax.set_xscale("log")
        ticks = sorted({round(e, 2) for e in grid.epsilon if np.isfinite(e)})
        if ticks:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("epsilon (reported, whole run; log scale)")
        ax.set_ylabel(f"{title} on held-out persons")
        ax.set_title(f"{title} against privacy budget (mean +- SD over seeds)")
        ax.grid(alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=3)
    fig.tight_layout()
    path = out / "privacy_utility.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def fig_rounds(table: pd.DataFrame, sweep_dir: Path, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.6))
    keys = _config_key(table)
    cmap = plt.get_cmap("viridis")
    configs = list(_filled(table, keys).groupby(keys, dropna=False))
    for i, (name, sub) in enumerate(configs):
        curves = []
        for pid in sub.point:
            m = pd.read_csv(sweep_dir / "points" / pid / "metrics.csv")
            curves.append(m.set_index("round")["central.accuracy"])
        mean = pd.concat(curves, axis=1).mean(axis=1)
        row = sub.iloc[0]
        style = {"non_private": ("black", "--"), "centralized": ("black", ":")}.get(row.role,
                                                                                  (cmap(i / max(len(configs), 1)), "-"))
        eps = row.epsilon
        label = (row.role.replace("_", "-") if row.role != "grid" else _label(row, [c for c in keys if c != "role"])
                 + (f" (eps {sub.epsilon.mean():.2g})" if np.isfinite(eps) else ""))
        ax.plot(mean.index, mean.values, color=style[0], linestyle=style[1], label=label)
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy on held-out persons")
    ax.set_title("Accuracy per round (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    path = out / "accuracy_per_round.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def fig_per_nso(table: pd.DataFrame, out: Path) -> Path:
    nso_cols = [c for c in table.columns if c.startswith("nso.") and c.endswith(".accuracy")]
    nsos = [c.split(".")[1] for c in nso_cols]
    keys = _config_key(table)
    summary = _filled(table, keys).groupby(keys, dropna=False)[nso_cols + ["epsilon"]].mean().reset_index()
    summary = summary[summary.role != "centralized"].sort_values("epsilon", ascending=False)
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(nsos) * max(len(summary), 1) / 3), 4.6))
    width = 0.8 / max(len(summary), 1)
    x = np.arange(len(nsos))
    cmap = plt.get_cmap("viridis")
    for i, (_, row) in enumerate(summary.iterrows()):
        label = ("non-private" if row.role == "non_private" else
                 _label(row, [c for c in keys if c != "role"]) + f" (eps {row.epsilon:.2g})")
        color = "black" if row.role == "non_private" else cmap(i / max(len(summary), 1))
        ax.bar(x + i * width - 0.4 + width / 2, row[nso_cols].astype(float), width, label=label, color=color)
    ax.set_xticks(x, nsos)
    ax.set_xlabel("NSO (federated evaluation on its own test persons)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("Per-NSO accuracy: who pays for privacy (mean over seeds)")
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out / "per_nso_accuracy.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def fig_secagg_cost(table: pd.DataFrame, out: Path) -> tuple[Path | None, str]:
    fed = table[table.role == "grid"]
    if fed.secure_aggregation.nunique() < 2:
        return None, "SecAgg+ was not varied in this sweep, so its time cost is not measured here."
    other = [c for c in fed.columns if c.startswith("grid.") and c != "grid.secure_aggregation.enabled"] + ["seed"]
    pairs = fed.pivot_table(index=other, columns="secure_aggregation", values="round_s", aggfunc="mean").dropna()
    ratio = pairs[True] / pairs[False]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.bar(["without SecAgg+", "with SecAgg+"], [pairs[False].mean(), pairs[True].mean()],
           yerr=[pairs[False].std(), pairs[True].std()], capsize=4, color=["#7a9cc6", "#c67a7a"])
    ax.set_ylabel("seconds per round (mean over paired points)")
    ax.set_title(f"SecAgg+ time cost: x{ratio.mean():.2f} per round ({len(ratio)} pairs)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out / "secagg_cost.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path, (f"Over {len(ratio)} pairs of points identical but for SecAgg+, a round took "
                  f"{pairs[False].mean():.2f} s without and {pairs[True].mean():.2f} s with it "
                  f"(x{ratio.mean():.2f}, range {ratio.min():.2f}-{ratio.max():.2f}).")


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(sweep_dir: Path | str) -> Path:
    sweep_dir = Path(sweep_dir)
    table, plan = _load(sweep_dir)
    out = sweep_dir / "report"
    out.mkdir(exist_ok=True)
    figs = [fig_privacy_utility(table, out), fig_rounds(table, sweep_dir, out), fig_per_nso(table, out)]
    sec_fig, sec_text = fig_secagg_cost(table, out)
    first = sweep_dir / "points" / table.point.iloc[0] / "manifest.json"
    man = json.loads(first.read_text()) if first.exists() else {}
    versions = ", ".join(f"{k} {v}" for k, v in man.get("versions", {}).items() if v)
    git = man.get("git", {})
    planned = len(plan["points"])
    summary = summarise(table)
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        f"- Command: `{plan.get('command', 'ppml sweep')}`; sweep file: `sweep.toml` in this directory "
        f"(copy of `{plan.get('sweep_file')}`)",
        f"- Points: {len(table)} of {planned} finished; seeds: {sorted(table.seed.unique().tolist())}",
        f"- Versions: {versions}; git commit {git.get('commit')}" + (" (uncommitted changes)" if git.get("dirty") else ""),
        f"- Data fingerprint: {json.loads((sweep_dir / 'points' / table.point.iloc[0] / 'summary.json').read_text())['data_fingerprint'][:16]}",
        "- Reproduce a point: `ppml run points/<id>/config.toml --out <new dir>` gives the same numbers.",
        "",
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
        "## SecAgg+ time cost",
        sec_text,
        "",
    ]
    if sec_fig:
        lines += [f"![SecAgg+ cost]({sec_fig.name})", ""]
    lines += ["## Results (mean and SD over seeds)", "", _markdown(summary), "",
              "Per-run rows: `../results.csv`; per-round metrics: `points/<id>/metrics.csv`.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path

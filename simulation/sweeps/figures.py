"""Figures of a sweep report, made to be read: small multiples per privacy unit and scope, colour
for epsilon, a heatmap of NSO x setting instead of rows of near-identical bars.

Every function takes the results table (sweeps/table.py) and writes one PNG, or returns None when
the sweep did not vary what the figure shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

EPSILON_KEYS = ("grid.privacy.target_epsilon", "grid.privacy.noise_multiplier")
PANEL_KEYS = ("grid.privacy.unit", "grid.privacy.scope")
POPULATION_KEY = "grid.data.generate.persons_scale"
REFERENCES = (("non_private", "--", "non-private federated"), ("centralized", ":", "centralized ceiling"))


def panel(row: pd.Series) -> str:
    """'record / nso', 'person / federation', ...: what a privacy guarantee protects, and where the noise is."""
    return f"{row['privacy_unit']} / {row['privacy_scope']}"


def series_keys(table: pd.DataFrame) -> list[str]:
    """Grid keys that are neither epsilon nor the panel (e.g. SecAgg+ on/off, population, hyperparameters)."""
    return [c for c in table.columns if c.startswith("grid.") and c not in EPSILON_KEYS + PANEL_KEYS]


def short(key: str) -> str:
    return key.removeprefix("grid.").split(".")[-1]


def describe(row: pd.Series, keys: list[str]) -> str:
    """'SecAgg+, persons_scale=4' for the given grid keys of a row, leaving out keys it does not set."""
    parts = []
    for k in keys:
        v = row[k]
        if pd.isna(v):
            continue
        parts.append(("SecAgg+" if v else "no SecAgg+") if k == "grid.secure_aggregation.enabled" else f"{short(k)}={v}")
    return ", ".join(parts)


def varying(table: pd.DataFrame, keys: list[str]) -> list[str]:
    return [k for k in keys if table[k].astype(str).nunique() > 1]


def _save(fig, out: Path, name: str) -> Path:
    fig.tight_layout()
    path = out / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _references(ax, table: pd.DataFrame, metric: str) -> None:
    for role, style, name in REFERENCES:
        ref = table[table.role == role][metric]
        if len(ref):
            ax.axhline(ref.mean(), color="black", linestyle=style, linewidth=1.1, label=f"{name} ({ref.mean():.3f})")


def _eps_colours(eps: pd.Series):
    finite = eps[np.isfinite(eps)]
    norm = mcolors.LogNorm(vmin=max(finite.min(), 1e-3), vmax=max(finite.max(), finite.min() * 1.01)) \
        if len(finite) else None
    return norm, plt.get_cmap("viridis")


def privacy_utility(table: pd.DataFrame, out: Path, metric: str = "macro_f1") -> Path:
    """One panel per unit/scope: the metric against the reported epsilon, mean +- SD over seeds."""
    grid = table[(table.role == "grid") & np.isfinite(table.epsilon)].copy()
    grid["panel"] = grid.apply(panel, axis=1)
    panels = sorted(grid.panel.unique())
    keys = series_keys(table)
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 3.8), sharey=True,
                             squeeze=False)
    for ax, name in zip(axes[0], panels):
        sub = grid[grid.panel == name]
        lines = varying(sub, keys)
        for _, s in (sub.groupby(lines, dropna=False) if lines else [((), sub)]):
            by = [c for c in EPSILON_KEYS if c in s.columns and s[c].notna().any()] or ["role"]
            stats = s.groupby(by, dropna=False).agg(eps=("epsilon", "mean"), m=(metric, "mean"), sd=(metric, "std"))
            stats = stats.sort_values("eps")
            ax.errorbar(stats.eps, stats.m, yerr=stats.sd.fillna(0), marker="o", capsize=3,
                        label=f"{name}: {describe(s.iloc[0], lines)}" if lines else name)
        ceiling = table[(table.role == "centralized_dp") & np.isfinite(table.epsilon)]
        ceiling = ceiling[ceiling.privacy_unit == sub.privacy_unit.iloc[0]]  # its scope reads 'centralized'
        if len(ceiling):
            by = [c for c in EPSILON_KEYS if c in ceiling.columns and ceiling[c].notna().any()] or ["role"]
            c_stats = ceiling.groupby(by, dropna=False).agg(eps=("epsilon", "mean"), m=(metric, "mean"),
                                                            sd=(metric, "std")).sort_values("eps")
            ax.errorbar(c_stats.eps, c_stats.m, yerr=c_stats.sd.fillna(0), marker="s", linestyle=":", color="black",
                        capsize=3, label="pooled-data DP ceiling (one curator, same epsilon)")
        _references(ax, table, metric)
        ax.set_xscale("log")
        ticks = sorted({round(e, 2) for e in sub.epsilon})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epsilon (whole run)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric.replace('_', '-')} on held-out persons")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    return _save(fig, out, "privacy_utility.png")


def per_nso_heatmap(table: pd.DataFrame, out: Path) -> Path:
    """Accuracy of the final model on each NSO's own test persons, per setting (mean over seeds)."""
    cols = [c for c in table.columns if c.startswith("nso.") and c.endswith(".accuracy")]
    return _setting_heatmap(table[table.role != "centralized"], cols, [c.split(".")[1] for c in cols],
                            "Accuracy on each NSO's test persons: who pays for privacy", out / "per_nso_accuracy.png")


def per_class_heatmap(table: pd.DataFrame, out: Path) -> Path | None:
    """F1 of each of the dataset's labels on the held-out persons, per setting (mean over seeds)."""
    cols = [c for c in table.columns if c.startswith("f1.")]
    if not cols:
        return None
    return _setting_heatmap(table, cols, [c[3:] for c in cols], "F1 per label on held-out persons: which "
                            "activities privacy costs", out / "per_class_f1.png")


def _setting_heatmap(table: pd.DataFrame, cols: list[str], names: list[str], title: str, path: Path) -> Path:
    """One row per setting (references first, then by panel and falling epsilon), one column per `cols`."""
    t = table.copy()
    keys = varying(t, [c for c in t.columns if c.startswith("grid.") and c not in EPSILON_KEYS + PANEL_KEYS])
    t["panel"] = t.apply(lambda r: "" if r.role in ("non_private", "centralized") else panel(r), axis=1)
    t["setting"] = t.apply(lambda r: (r.role.replace("_", "-") if r.role in ("non_private", "centralized")
                                      else f"{r.panel}, eps {r.epsilon:.2g}")
                           + (f", {describe(r, keys)}" if describe(r, keys) else ""), axis=1)
    m = t.groupby("setting")[cols + ["epsilon"]].mean()
    m["panel"] = t.groupby("setting")["panel"].first()
    m = m.sort_values(["panel", "epsilon"], ascending=[True, False])
    data = m[cols].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.2 + 0.32 * len(m)))
    im = ax.imshow(data, cmap="RdYlGn", vmin=np.nanmin(data), vmax=np.nanmax(data), aspect="auto")
    for (i, j), v in np.ndenumerate(data):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), names, rotation=45 if max(map(len, names)) > 4 else 0, ha="right"
                  if max(map(len, names)) > 4 else "center", fontsize=7)
    ax.set_yticks(range(len(m)), m.index, fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _save(fig, path.parent, path.name)


def rounds(table: pd.DataFrame, curves: dict[str, pd.Series], out: Path) -> Path:
    """Accuracy per round; colour = epsilon, line style = unit/scope, black = references."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    norm, cmap = _eps_colours(table.epsilon)
    styles = {}
    for _, row in table.drop_duplicates("point").iterrows():
        curve = curves.get(row.point)
        if curve is None:
            continue
        if row.role != "grid":
            style = dict(color="black", linestyle="--" if row.role == "non_private" else ":")
        else:
            ls = styles.setdefault(panel(row), ["-", "-.", (0, (1, 1)), (0, (5, 2))][len(styles) % 4])
            style = dict(color=cmap(norm(row.epsilon)) if norm else "grey", linestyle=ls)
        ax.plot(curve.index, curve.values, linewidth=1.0, alpha=0.85, **style)
    for name, ls in styles.items():
        ax.plot([], [], color="grey", linestyle=ls, label=name)
    for role, ls, name in REFERENCES:
        if (table.role == role).any():
            ax.plot([], [], color="black", linestyle=ls, label=name)
    if norm:
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="epsilon")
        ticks = sorted({float(e) for e in table.epsilon if np.isfinite(e)})
        bar.set_ticks(ticks, labels=[f"{t:.2g}" for t in ticks])
        bar.ax.minorticks_off()
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy on held-out persons")
    ax.set_title("Accuracy per round (each run)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, out, "accuracy_per_round.png")


def population(table: pd.DataFrame, out: Path) -> Path | None:
    """Macro-F1 against persons per NSO (x the default), one line per unit/scope and epsilon."""
    if POPULATION_KEY not in table.columns or table[POPULATION_KEY].nunique() < 2:
        return None
    t = table[table.role.isin(["grid", "non_private"])].copy()
    t["line"] = t.apply(lambda r: "non-private" if r.role == "non_private" else f"{panel(r)}, eps {r.epsilon:.2g}",
                        axis=1)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, s in t.groupby("line"):
        stats = s.groupby(POPULATION_KEY).agg(m=("macro_f1", "mean"), sd=("macro_f1", "std"))
        ax.errorbar(stats.index, stats.m, yerr=stats.sd.fillna(0), marker="o", capsize=3, label=name,
                    color="black" if name == "non-private" else None)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("persons per NSO (x the default population)")
    ax.set_ylabel("macro-F1 on held-out persons")
    ax.set_title("How many participants a privacy target needs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out, "population.png")


def secagg_cost(table: pd.DataFrame, out: Path) -> tuple[Path | None, str]:
    fed = table[table.role == "grid"]
    if fed.secure_aggregation.nunique() < 2:
        return None, "SecAgg+ was not varied in this sweep, so its time cost is not measured here."
    other = [c for c in fed.columns if c.startswith("grid.") and c != "grid.secure_aggregation.enabled"] + ["seed"]
    pairs = fed.pivot_table(index=other, columns="secure_aggregation", values="round_s", aggfunc="mean").dropna()
    if pairs.empty or not {True, False} <= set(pairs.columns):
        return None, "No pair of points differs only in SecAgg+, so its time cost is not measured here."
    ratio = pairs[True] / pairs[False]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(["without SecAgg+", "with SecAgg+"], [pairs[False].mean(), pairs[True].mean()],
           yerr=[pairs[False].std(), pairs[True].std()], capsize=4, color=["#7a9cc6", "#c67a7a"])
    ax.set_ylabel("seconds per round")
    ax.set_title(f"SecAgg+ time cost: x{ratio.mean():.2f} per round ({len(ratio)} pairs)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out, "secagg_cost.png"), (
        f"Over {len(ratio)} pairs of points identical but for SecAgg+, a round took {pairs[False].mean():.2f} s "
        f"without and {pairs[True].mean():.2f} s with it (x{ratio.mean():.2f}, range {ratio.min():.2f}-"
        f"{ratio.max():.2f}).")


def privacy_risk(table: pd.DataFrame, out: Path) -> Path | None:
    """Reported epsilon against the audit's empirical lower bound (it must stay below the diagonal)
    and against membership-inference AUC (0.5 = guessing), per privacy unit and scope; runs without
    DP stand at the right edge."""
    t = table[table.get("audit.epsilon_lower_bound", pd.Series(dtype=float)).notna()] \
        if "audit.epsilon_lower_bound" in table else pd.DataFrame()
    if t.empty:
        return None
    finite = t.epsilon[np.isfinite(t.epsilon)]
    right = float(2 ** np.ceil(np.log2(finite.max() * 2))) if len(finite) else 2.0
    x = t.epsilon.where(np.isfinite(t.epsilon), right)
    kinds = t.apply(lambda r: "no DP" if r.role != "grid" or not np.isfinite(r.epsilon) else panel(r), axis=1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for kind, marker in zip(dict.fromkeys(kinds), "osD^v<>"):
        mask = kinds == kind
        axes[0].scatter(x[mask], t["audit.epsilon_lower_bound"][mask], marker=marker, label=kind)
        axes[1].scatter(x[mask], t["audit.mia_auc"][mask], marker=marker, label=kind)
    top = max(4.0, float(t["audit.epsilon_lower_bound"].max()) * 1.2)  # what m canaries can show at best
    diagonal = np.geomspace(max(float(x.min()) / 2, 0.05), right, 50)
    axes[0].plot(diagonal, np.minimum(diagonal, top), color="grey", linestyle="--", linewidth=0.8,
                 label="lower bound = reported")
    axes[0].set_ylim(-0.1, top)
    axes[0].set_ylabel("empirical epsilon lower bound (95 %)")
    axes[1].axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    axes[1].set_ylabel("membership inference AUC (real persons)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(f"reported epsilon (runs without DP drawn at {right:g})")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Privacy checked empirically: one-run canary audit and membership inference", fontsize=10)
    return _save(fig, out, "privacy_risk.png")

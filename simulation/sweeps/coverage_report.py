"""The report of a coverage sweep (coverage_psi/): does the 95 % interval hold the true coverage,
how biased is the estimate with and without the key-error correction, what does DP add."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _settings(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("grid.")]


def intervals_figure(table: pd.DataFrame, out: Path) -> Path:
    """Every run's interval against its true coverage (x), one panel per setting; red = missed."""
    keys = _settings(table)
    groups = list(table.groupby(keys, dropna=False)) if keys else [("all", table)]
    cols = min(3, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False, sharey=True)
    for ax, (setting, g) in zip(axes.flat, groups):
        g = g.sort_values("coverage.true_coverage").reset_index(drop=True)
        held = g["coverage.interval_holds_truth"].astype(bool)
        for i, r in g.iterrows():
            ax.plot([i, i], [r["coverage.ci_low"], r["coverage.ci_high"]], color="tab:blue" if held[i] else "tab:red")
        ax.plot(g.index, g["coverage.coverage"], "o", color="tab:blue", ms=3, label="estimate, 95 % interval")
        ax.plot(g.index, g["coverage.coverage_uncorrected"], "s", color="tab:orange", ms=3, label="without correction")
        ax.plot(g.index, g["coverage.true_coverage"], "x", color="black", ms=5, label="truth")
        values = setting if isinstance(setting, tuple) else (setting,)
        label = ", ".join(f"{k.split('.')[-1]} {'none' if pd.isna(v) else v}" for k, v in zip(keys, values))
        ax.set_title(f"{label or 'all runs'}\nheld {held.mean():.0%} of {len(g)}", fontsize=8)
        ax.set_xlabel("run (sorted by true coverage)")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel("coverage of the register")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = out / "coverage_intervals.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def coverage_sections(table: pd.DataFrame, out: Path, markdown) -> list[str]:
    fig = intervals_figure(table, out)
    keys = _settings(table)
    t = table.assign(error=table["coverage.error"].abs(), error_uncorrected=table["coverage.error_uncorrected"],
                     held=table["coverage.interval_holds_truth"].astype(float))
    stats = (t.groupby(keys, dropna=False) if keys else t.groupby(lambda _: "all"))[
        ["held", "coverage.error", "error_uncorrected", "coverage.protocol_seconds"]].mean().reset_index()
    return ["## Coverage of a third party's list (private set intersection)",
            "Each run's 95 % interval against the true coverage, per setting (red: the interval missed), the",
            "estimate without the key-error correction, and per setting the share of intervals that held the",
            "truth, the mean error with and without the correction, and the protocol's seconds.", "",
            f"![intervals]({fig.name})", "", markdown(stats), ""]

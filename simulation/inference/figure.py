"""The time-use figure: estimates with intervals against the truth and the fact sheet, per NSO."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from datasets import facts  # noqa: E402


def time_use_figure(table: pd.DataFrame, out: Path, title: str = "") -> Path:
    """Small multiples, one per NSO (and ALL): overall minutes per day per activity - corrected
    estimate with its 95 % interval, classify-and-count, the sensor-only sample's truth and, for
    fact-sheet countries, the published HETUS minutes."""
    rows = table[table["group"] == "all"]
    nsos = list(dict.fromkeys(rows["nso"]))
    cols = min(3, len(nsos))
    fig, axes = plt.subplots(-(-len(nsos) // cols), cols, figsize=(5.2 * cols, 3.6 * -(-len(nsos) // cols)),
                             squeeze=False, sharex=True)
    for ax, nso in zip(axes.flat, nsos):
        t = rows[rows["nso"] == nso]
        y = np.arange(len(t))
        err = np.vstack([t["minutes"] - t["ci_low"], t["ci_high"] - t["minutes"]]).clip(min=0)
        ax.errorbar(t["minutes"], y, xerr=err, fmt="o", color="tab:blue", ms=4, capsize=2, label="corrected, 95 % CI")
        ax.plot(t["minutes_classify_count"], y, "s", color="tab:orange", ms=3, label="classify-and-count")
        ax.plot(t["true_minutes"], y, "x", color="black", ms=5, label="truth (sensor-only sample)")
        if nso in facts.COUNTRIES and set(t["activity"]) <= set(facts.minutes_per_day(nso)):
            pub = facts.minutes_per_day(nso)
            ax.plot([pub[a] for a in t["activity"]], y, "d", color="tab:green", ms=3, label="HETUS 2010 (fact sheet)")
        ax.set_yticks(y, t["activity"], fontsize=7)
        ax.set_title("pooled over NSOs" if nso == "ALL" else nso, fontsize=9)
        ax.set_xscale("symlog", linthresh=30)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes.flat[len(nsos):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("minutes per day")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1.0))
    if title:
        fig.suptitle(title, y=1.03, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = out / "time_use.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

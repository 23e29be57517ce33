"""The figure of `ppml bench techniques`: round time and bytes per NSO against the number of NSOs,
one line per technique, because the comparison is about how each cost grows."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"plain": "plain FedAvg", "secaggplus": "SecAgg+", "ckks": "CKKS (TenSEAL)"}


def techniques_figure(result: dict, path: Path) -> Path:
    """Two panels: seconds per round and kilobytes per NSO per round, against the NSOs."""
    counts = sorted(int(n) for n in result["table"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, label in LABELS.items():
        rows = [result["table"][n if n in result["table"] else str(n)][method] for n in counts]
        left.plot(counts, [r["round_s"] for r in rows], marker="o", label=label)
        right.plot(counts, [r["bytes_per_nso_round"] / 1e3 for r in rows], marker="o", label=label)
    left.set(xlabel="NSOs", ylabel="seconds per round (training included)", xticks=counts)
    right.set(xlabel="NSOs", ylabel="kB uploaded per NSO per round", xticks=counts, yscale="log")
    left.legend()
    fig.suptitle(f"Secure aggregation techniques, default model, {result['rounds']} rounds, local engine")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

"""The release ledger of one trained model: every time-use release made from it, and their total.

Each release is two Gaussian mechanisms on disjoint persons (the sensor-only persons, the labelled
persons; clients/estimation/release.py), each with noise multiplier z. Releases from the same model
touch the same persons again, so they compose: k Gaussian mechanisms with multipliers z_i are one
Gaussian mechanism with z = (sum z_i^-2)^(-1/2) (Gaussian DP, exact), whose epsilon at the ledger's
delta is the total (clients/privacy/analytic_gaussian.py). The two groups are disjoint, so the
total is the larger of their two totals. A release without noise makes every later total
infinite, and a budget refuses it. Every release draws fresh noise: in reproducible mode its
stream is named by its number in the ledger, so no two releases share one.

The ledger is a JSON file beside the model (`release_ledger.json` in the run directory); the
simulation, which plays every NSO, keeps it for them. A budget (`inference.budget`) is checked
before a release starts: one that would take the total past it is refused.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from datasets.atomic import write_json
from datasets.errors import UserError

from ..privacy import analytic_gaussian

FILE_NAME = "release_ledger.json"
GROUPS = ("sensor", "labelled")


def read(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / FILE_NAME
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text())["releases"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a release ledger ({exc}); it records every release of this model and "
                        "cannot be rebuilt - restore it from a copy") from None


def total(releases: list[dict], delta: float) -> dict:
    """The composed epsilon of every release so far, per group and overall, at `delta`."""
    per = {}
    for g in GROUPS:
        zs = [r[f"z_{g}"] for r in releases]
        per[g] = math.inf if any(z <= 0 for z in zs) else (
            analytic_gaussian.epsilon_of(analytic_gaussian.composed(zs), delta) if zs else 0.0)
    eps = max(per.values())
    return {"releases": len(releases), "delta": delta, "epsilon": None if math.isinf(eps) else eps,
            "epsilon_sensor": None if math.isinf(per["sensor"]) else per["sensor"],
            "epsilon_labelled": None if math.isinf(per["labelled"]) else per["labelled"],
            "no_dp": any(r[f"z_{g}"] <= 0 for r in releases for g in GROUPS)}


def check_budget(releases: list[dict], z: float, delta: float, budget: float | None) -> None:
    """Refuse, before any work, a release whose noise multiplier z would take the total past the budget."""
    if budget is None:
        return
    planned = total([*releases, {"z_sensor": z, "z_labelled": z}], delta)
    if planned["epsilon"] is None:
        raise UserError(f"inference.budget = {budget:g} but this release has no noise (inference.epsilon unset) or "
                        "an earlier one had none: no epsilon covers it. Set inference.epsilon")
    if planned["epsilon"] > budget * (1 + 1e-9):
        spent = total(releases, delta)["epsilon"] or 0.0
        raise UserError(f"inference.budget = {budget:g}: the {len(releases)} earlier release(s) of this model spent "
                        f"epsilon {spent:.3f}, and this one would bring the total to {planned['epsilon']:.3f}. "
                        "Allowed: a smaller inference.epsilon, or a larger inference.budget")


def record(run_dir: Path, entry: dict, delta: float) -> dict:
    """Append one release (its z per group, epsilons, where it went) and return the new total."""
    earlier = read(run_dir)
    releases = [*earlier, {"number": len(earlier) + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry}]
    out = total(releases, delta)
    write_json(Path(run_dir) / FILE_NAME, {"releases": releases, "total": out})
    return out

"""Honest tuning: per privacy setting, the hyperparameters with the best score on validation
persons, reported on the held-out persons.

Validation persons are each NSO's test persons (federated evaluation; `validation_macro_f1` in
results.csv); the reported numbers come from the held-out persons of central evaluation, a disjoint
set. A setting is what a user fixes (epsilon, privacy unit and scope, SecAgg+, population); every
other grid key is a hyperparameter to choose. The choice is made on the mean over seeds. The
tuning itself is not accounted: each trial is a separate release, so strictly the privacy cost of
the chosen model is that of all trials together (docs/privacy.md says so).
"""

from __future__ import annotations

import pandas as pd

SETTING_KEYS = ("grid.privacy.target_epsilon", "grid.privacy.noise_multiplier", "grid.privacy.unit",
                "grid.privacy.scope", "grid.secure_aggregation.enabled", "grid.data.generate.persons_scale")


def _is_setting(column: str) -> bool:
    """What a user fixes rather than tunes: privacy, SecAgg+, population, and how statistics are
    released after training ([inference])."""
    return column in SETTING_KEYS or column.startswith("grid.inference.")


def hyperparameter_keys(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("grid.") and not _is_setting(c)]


def tuned(table: pd.DataFrame, by: str = "validation_macro_f1") -> pd.DataFrame:
    """One row per setting: the chosen hyperparameters, their validation score and held-out scores
    (mean over seeds). Empty when the grid has no hyperparameter to choose."""
    hyper = hyperparameter_keys(table)
    grid = table[table.role == "grid"]
    if not hyper or grid.empty or by not in grid.columns:
        return pd.DataFrame()
    setting = [c for c in grid.columns if c.startswith("grid.") and _is_setting(c)]
    if not setting:  # the grid holds hyperparameters only: one setting, chosen over all of them
        grid, setting = grid.assign(setting="all"), ["setting"]
    filled = grid.assign(**{k: grid[k].astype(object).where(grid[k].notna(), "-") for k in setting + hyper})
    means = filled.groupby(setting + hyper, dropna=False)[[by, "macro_f1", "accuracy", "epsilon"]].mean().reset_index()
    if means.groupby(setting, dropna=False).size().max() < 2:
        return pd.DataFrame()  # one choice per setting (e.g. variants with fixed recipes): nothing was tuned
    best = means.loc[means.groupby(setting, dropna=False)[by].idxmax()]
    return best.rename(columns={by: f"chosen_by_{by}", "macro_f1": "heldout_macro_f1",
                                "accuracy": "heldout_accuracy"}).reset_index(drop=True)

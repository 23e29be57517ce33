from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from datasets.synthetic.generator import GeneratorSettings, generate

FACTS = Path(__file__).resolve().parents[2] / "shared" / "facts" / "time_use_and_sensors.md"


@pytest.fixture(scope="session")
def default_dataset():
    """The default simulated dataset (8 NSOs, seed 0)."""
    return generate(GeneratorSettings())


@pytest.fixture(scope="session")
def fact_sheet() -> str:
    assert FACTS.exists(), f"the fact sheet must lie beside the checkout: {FACTS}"
    return FACTS.read_text()


def markdown_table(text: str, heading: str) -> pd.DataFrame:
    """The first Markdown table after the heading that starts with `heading`."""
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                rows.append(cells)
        elif rows:
            break
    return pd.DataFrame(rows[1:], columns=rows[0])


# A window table that is not the simulator's: other column names, four labels of its own, a mood
# rating on 1-10, 30-minute windows; made from simulated values so that it can be learned.
DECLARED_SCHEMA = '''
name = "smartwatch-study"
description = "wrist accelerometer, heart rate and phone context; four states"

[windows]
seconds = 1800
time_features = true

[[features]]
name = "acc_mean"
unit = "g"
min = 0.0
max = 8.0
missing = true
transform = "log1p"

[[features]]
name = "acc_p90"
unit = "g"
min = 0.0
max = 8.0
missing = true
transform = "log1p"

[[features]]
name = "cadence"
unit = "steps/min"
min = 0
max = 250
missing = true

[[features]]
name = "heart_rate_share"
min = 0.0
max = 1.2
missing = true

[[features]]
name = "place"
kind = "code"
codes = 5
missing = true

[label]
column = "state"
values = ["asleep", "sedentary", "active", "moving"]
hetus = { asleep = "sleep", moving = "travel" }

[wellbeing]
column = "mood"
min = 1
max = 10
'''
STATE = {"sleep": "asleep", "travel": "moving", "sports_outdoor": "active", "household_family": "active"}


def declared_windows(windows: pd.DataFrame) -> pd.DataFrame:
    """The simulator's table in the declared schema above (every third slot: 30-minute windows)."""
    w = windows[windows["slot"] % 3 == 0]
    return pd.DataFrame({
        "nso": w["nso"].astype(str), "person_id": w["person_id"].astype(str), "day": w["day"],
        "slot": w["slot"] // 3, "acc_mean": w["enmo_mean"] / 1000, "acc_p90": w["enmo_p90"] / 1000,
        "cadence": w["steps_per_min"], "heart_rate_share": w["hr_pct_max"], "place": w["location"],
        "state": w["activity"].astype(str).map(lambda a: STATE.get(a, "sedentary")),
        "mood": 1 + 1.5 * w["wellbeing"]})


@pytest.fixture(scope="session")
def declared_dir(tmp_path_factory):
    """A dataset directory (windows.parquet + schema.toml) of the declared schema, 3 NSOs."""
    windows = generate(GeneratorSettings(nsos=["FI", "NL", "PL"], persons_scale=0.3)).windows
    out = tmp_path_factory.mktemp("declared")
    declared_windows(windows).to_parquet(out / "windows.parquet", index=False)
    (out / "schema.toml").write_text(DECLARED_SCHEMA)
    return out

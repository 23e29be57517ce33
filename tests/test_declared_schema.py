"""Data with its own sensors and labels: a schema file declares them, and every step follows it.

The declared dataset (conftest.DECLARED_SCHEMA) has other feature names, four labels of its own, a
1-10 mood rating, 30-minute windows and no column the simulator would know.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tomli_w

from datasets.assign import assign_nsos
from datasets.errors import DataValidationError, UserError
from datasets.features import FEATURE_NAMES, encode, feature_names
from datasets.io import load_dataset, load_windows
from datasets.table_schema import BUILTIN, load_schema
from simulation.cli import main

from .conftest import DECLARED_SCHEMA

LABELS = ["asleep", "sedentary", "active", "moving"]


def _config(tmp_path, data_dir, **sections) -> str:
    cfg = {"name": "declared", "data": {"path": str(data_dir)}, "federation": {"rounds": 2},
           "output": {"dir": str(tmp_path / "runs")}, **sections}
    path = tmp_path / f"cfg-{len(list(tmp_path.glob('cfg-*')))}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return str(path)


def test_a_declared_table_runs_with_dp_and_secagg_and_names_its_labels(tmp_path, declared_dir, capsys):
    cfg = _config(tmp_path, declared_dir, privacy={"enabled": True, "noise_multiplier": 1.0},
                  secure_aggregation={"enabled": True})
    assert main(["run", cfg, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["data"]["schema"] == "smartwatch-study" and s["data"]["labels"] == LABELS
    # 4 numbers, each with a missing indicator; a 5-code place and its indicator; 4 time-of-day inputs
    assert s["data"]["features"] == len(feature_names(load_schema(declared_dir / "schema.toml"))) == 18
    assert list(s["final"]["per_class_f1"]) == LABELS
    assert s["secure_aggregation"]["rounds_completed"] == 2 and s["privacy"]["epsilon"] > 0
    assert 0 < s["final"]["wellbeing_mae"] < 9  # on the declared 1-10 scale
    model = np.load(tmp_path / "run" / "model.npz")
    assert model["arr_0"].shape[1] == 18 and model[f"arr_{len(model.files) - 1}"].shape == (5,)  # 4 labels + mood

    # the non-private pooled ceiling (with the config's [privacy] the centralized engine runs DP-SGD)
    assert main(["run", cfg, "--set", "engine.name=centralized", "--set", "privacy.enabled=false",
                 "--out", str(tmp_path / "central"), "--quiet"]) == 0
    central = json.loads((tmp_path / "central" / "summary.json").read_text())
    assert list(central["final"]["per_class_f1"]) == LABELS and central["final"]["accuracy"] > 0.6
    assert central["privacy"] == {"enabled": False}

    assert main(["data", "describe", str(declared_dir)]) == 0
    shown = capsys.readouterr().out
    assert "smartwatch-study" in shown and "share of windows by state" in shown and "moving" in shown


def test_a_declared_table_sweeps_and_reports_by_its_labels(tmp_path, declared_dir):
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'''
[sweep]
name = "declared"
base = "{_config(tmp_path, declared_dir)}"
seeds = [0]
workers = 2
references = false
[sweep.set]
"privacy.enabled" = true
[sweep.grid]
"privacy.target_epsilon" = [2.0, 8.0]
''')
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "sw")]) == 0
    table = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert {f"f1.{a}" for a in LABELS} <= set(table.columns) and len(table) == 2
    assert main(["report", str(tmp_path / "sw")]) == 0
    report = (tmp_path / "sw" / "report" / "report.md").read_text()
    assert "schema 'smartwatch-study'" in report and "labels: asleep, sedentary, active, moving" in report
    assert (tmp_path / "sw" / "report" / "per_class_f1.png").stat().st_size > 10_000


def test_the_simulator_schema_encodes_exactly_as_before(default_dataset):
    w = default_dataset.windows.iloc[:5000]
    x, y, wb = encode(w)
    x2, y2, wb2 = encode(w, BUILTIN)
    assert x.shape[1] == len(feature_names(BUILTIN)) == len(FEATURE_NAMES) and (x == x2).all() and (y == y2).all()
    assert BUILTIN.labels[0] == "sleep" and len(BUILTIN.labels) == 13


def _bad_table(tmp_path, declared_dir, change) -> str:
    df = pd.read_parquet(declared_dir / "windows.parquet")
    df = change(df)
    out = tmp_path / "bad"
    out.mkdir(exist_ok=True)
    df.to_csv(out / "windows.csv", index=False)
    (out / "schema.toml").write_text(DECLARED_SCHEMA)
    with pytest.raises(DataValidationError) as err:
        load_windows(out)
    return str(err.value)


def test_undeclared_columns_out_of_range_values_and_unknown_labels_get_one_message_each(tmp_path, declared_dir):
    def change(df):
        df = df.assign(gyro_x=0.0)
        df.loc[[3, 7], "cadence"] = 300
        df.loc[5, "state"] = "running"
        df.loc[9, "mood"] = 0.5
        df.loc[11, "place"] = 2.5
        return df

    msg = _bad_table(tmp_path, declared_dir, change)
    assert "unknown column(s) ['gyro_x']" in msg and "declared in the schema 'smartwatch-study'" in msg
    msg = _bad_table(tmp_path, declared_dir, lambda df: change(df).drop(columns=["gyro_x"]))
    assert "windows.csv" in msg
    assert "column 'cadence' must be in [0.0, 250.0]; rows 4, 8" in msg
    assert "column 'state' has unknown label(s) ['running'] in rows 6; allowed: asleep, sedentary, active, moving" in msg
    assert "column 'mood' must be in [1.0, 10.0]; rows 10" in msg
    assert "column 'place' holds codes (whole numbers); rows 12" in msg


def test_missing_values_are_refused_where_the_schema_says_so(tmp_path, declared_dir):
    schema = DECLARED_SCHEMA.replace('name = "cadence"\nunit = "steps/min"\nmin = 0\nmax = 250\nmissing = true',
                                     'name = "cadence"\nunit = "steps/min"\nmin = 0\nmax = 250\nmissing = false')
    df = pd.read_parquet(declared_dir / "windows.parquet")
    df["cadence"] = df["cadence"].fillna(0.0)
    df.loc[2, "cadence"] = np.nan
    df.to_parquet(tmp_path / "w.parquet", index=False)
    (tmp_path / "w.schema.toml").write_text(schema)  # a window file's own schema, beside it
    with pytest.raises(DataValidationError, match=r"column 'cadence' has empty values in rows 3; it may not be empty"):
        load_windows(tmp_path / "w.parquet")


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s.replace("min = 0\nmax = 250\n", "min = 0\n"), "a number needs min < max"),
    (lambda s: s.replace('[wellbeing]', 'colour = "red"\n[wellbeing]'), "unknown key 'label.colour'"),
    (lambda s: s.replace('moving = "travel"', 'moving = "commuting"'), "not HETUS activities"),
    (lambda s: s.replace("seconds = 1800", "seconds = 7"), "does not divide a day"),
    (lambda s: s.replace('"active", "moving"]', '"active", "active"]'), "listed twice"),
    (lambda s: s.replace('name = "cadence"', 'name = "slot"'), "used for keys, the label or well-being"),
    (lambda s: s.replace("codes = 5", "codes = 1"), "codes"),
    (lambda s: s + "\n[[[", "not a valid TOML schema file"),
])
def test_a_bad_schema_file_gets_one_message_naming_the_key(tmp_path, edit, expected):
    path = tmp_path / "schema.toml"
    path.write_text(edit(DECLARED_SCHEMA))
    with pytest.raises(UserError, match=expected) as err:
        load_schema(path)
    assert str(path) in str(err.value) and "Traceback" not in str(err.value)


def test_persons_are_spread_over_nsos_stratified_by_label_and_deterministic_by_seed(declared_dir):
    df = pd.read_parquet(declared_dir / "windows.parquet").drop(columns=["nso"])
    a = assign_nsos(df, 4, seed=1, label_column="state", source="t")
    b = assign_nsos(df, 4, seed=1, label_column="state", source="t")
    c = assign_nsos(df, 4, seed=2, label_column="state", source="t")
    per_person = a.groupby("person_id")["nso"].first()
    assert (a["nso"] == b["nso"]).all() and not (a["nso"] == c["nso"]).all()
    counts = per_person.value_counts()
    assert sorted(counts.index) == ["NSO1", "NSO2", "NSO3", "NSO4"] and counts.max() - counts.min() <= 1
    dominant = df.groupby("person_id")["state"].agg(lambda s: s.value_counts().idxmax())
    strata = pd.crosstab(dominant, per_person.reindex(dominant.index))
    assert (strata.max(axis=1) - strata.min(axis=1) <= 1).all()  # every label's persons dealt evenly
    with pytest.raises(UserError, match="already has an 'nso' column"):
        assign_nsos(pd.read_parquet(declared_dir / "windows.parquet"), 2, 0, "state", "t")


def test_import_assigns_nsos_and_a_run_uses_them(tmp_path, declared_dir):
    src = tmp_path / "src"
    src.mkdir()
    pd.read_parquet(declared_dir / "windows.parquet").drop(columns=["nso"]).to_csv(src / "windows.csv", index=False)
    (src / "schema.toml").write_text(DECLARED_SCHEMA)
    assert main(["data", "import", str(src), "--out", str(tmp_path / "imported"), "--nsos", "2", "--seed", "3"]) == 0
    ds = load_dataset(tmp_path / "imported")
    assert ds.schema.name == "smartwatch-study" and sorted(ds.windows["nso"].unique()) == ["NSO1", "NSO2"]
    summary = json.loads((tmp_path / "imported" / "summary.json").read_text())
    assert summary["assigned_nsos"] == 2 and sum(summary["nsos"].values()) == ds.windows["person_id"].nunique()
    # without an nso column a run must be told how to spread persons, and the message says how
    cfg = _config(tmp_path, src)
    assert main(["run", cfg, "--quiet"]) == 2
    assert main(["run", cfg, "--set", "data.assign_nsos=3", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert sorted(json.loads((tmp_path / "r" / "summary.json").read_text())["final"]["per_nso_accuracy"]) == \
        ["NSO1", "NSO2", "NSO3"]


def test_few_persons_per_nso_still_split_and_two_are_refused(tmp_path, declared_dir, capsys):
    df = pd.read_parquet(declared_dir / "windows.parquet")
    keep = df.groupby("nso")["person_id"].unique().apply(lambda ids: list(ids[:3])).sum()
    (tmp_path / "three").mkdir()
    df[df.person_id.isin(keep)].to_parquet(tmp_path / "three" / "windows.parquet", index=False)
    (tmp_path / "three" / "schema.toml").write_text(DECLARED_SCHEMA)
    assert main(["run", _config(tmp_path, tmp_path / "three"), "--out", str(tmp_path / "r3"), "--quiet"]) == 0
    index = json.loads((tmp_path / "r3" / "manifest.json").read_text())
    assert all(c["train_persons"] == 1 for c in index["windows"].values())  # one train, one test, one held out
    two = df[df.person_id.isin(keep[:-1])]
    (tmp_path / "two").mkdir()
    two.to_parquet(tmp_path / "two" / "windows.parquet", index=False)
    (tmp_path / "two" / "schema.toml").write_text(DECLARED_SCHEMA)
    assert main(["run", _config(tmp_path, tmp_path / "two"), "--quiet"]) == 2
    assert "has 2 person(s); at least 3 are needed" in capsys.readouterr().err


def test_schema_and_assignment_keys_need_imported_data(tmp_path, capsys):
    assert main(["run", "--set", "data.assign_nsos=2", "--quiet"]) == 2
    assert "apply to imported data" in capsys.readouterr().err


def test_the_seglearn_watch_recordings_convert_and_federate(tmp_path):
    """The real public dataset, on a slice of six of its ten persons (docs/data_format.md)."""
    from datasets.converters.seglearn_watch import convert
    from datasets.io import write_dataset

    ds = convert(window_seconds=2.0, subjects=6)
    assert ds.windows["person_id"].nunique() == 6 and len(ds.schema.features) == 16
    assert ds.schema.labels == ("pendulum", "abduction", "forward_elevation", "internal_rotation",
                                "external_rotation", "trapezius_extension", "upright_row")
    write_dataset(ds, tmp_path / "watch")
    back = load_dataset(tmp_path / "watch", assign=2)  # validated against the written schema
    assert len(back.windows) == len(ds.windows) and set(back.windows["activity"]) == set(ds.schema.labels)
    cfg = _config(tmp_path, tmp_path / "watch", data={"path": str(tmp_path / "watch"), "assign_nsos": 2})
    assert main(["run", cfg, "--set", "training.local_epochs=5", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["data"]["schema"] == "seglearn-watch" and s["final"]["accuracy"] > 1 / 7  # learns beyond chance
    assert s["final"]["wellbeing_mae"] is None  # no ratings in these data
    assert main(["data", "convert", "nothing", "--out", str(tmp_path / "x")]) == 2


def test_a_small_real_table_learns_with_the_embedded_defaults(tmp_path):
    """80 recordings, one window each (issue 24): one pass is one optimizer step, so an epoch count
    alone left the model at chance; the default step minimum per round makes it learn."""
    from datasets.converters.seglearn_watch import convert_recordings
    from datasets.io import write_dataset

    write_dataset(convert_recordings(), tmp_path / "rec")
    cfg = tmp_path / "rec.toml"
    cfg.write_text(tomli_w.dumps({"data": {"path": str(tmp_path / "rec"), "assign_nsos": 2},
                                  "output": {"dir": str(tmp_path / "runs")}}))  # nothing else set
    accuracy = {}
    for steps in (0, 500):
        out = tmp_path / f"r{steps}"
        assert main(["run", str(cfg), "--set", f"training.min_round_steps={steps}", "--out", str(out), "--quiet"]) == 0
        accuracy[steps] = json.loads((out / "summary.json").read_text())["final"]["accuracy"]
    # 4 exercises (chance 0.25), 8 held-out recordings; measured 0.875 and 0.0 at seed 0
    assert accuracy[500] >= 0.75 and accuracy[0] <= 0.5, accuracy


def test_a_sweep_over_missing_data_is_refused_before_any_point_runs(tmp_path, capsys):
    base = tmp_path / "base.toml"
    base.write_text('[data]\npath = "no/such/dir"\n')
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'[sweep]\nname = "x"\nbase = "{base}"\nseeds = [0]\n[sweep.grid]\n"federation.rounds" = [1, 2]\n')
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out")]) == 2
    assert "data.path = 'no/such/dir': no such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "out" / "points").exists()

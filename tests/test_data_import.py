"""The documented table format: round trips and one clear message for every kind of bad file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from datasets.errors import DataValidationError
from datasets.synthetic.generator import GeneratorSettings, generate
from datasets.io import fingerprint, load_windows
from simulation.cli import main


@pytest.fixture(scope="module")
def small():
    return generate(GeneratorSettings(nsos=["FI", "NL"], persons={"FI": 12, "NL": 12}, days_per_person=1)).windows


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_generate_writes_the_import_format_and_it_reads_back(tmp_path, fmt, capsys):
    out = tmp_path / "data"
    assert main(["data", "generate", "--out", str(out), "--format", fmt,
                 "--set", "data.generate.nsos=['FI','NL']", "--set", "data.generate.persons_scale=0.2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    back = load_windows(out)
    assert summary["windows"] == len(back)
    assert summary["fingerprint"] == fingerprint(back)  # the same data in either format
    assert (out / f"persons.{fmt}").exists()
    assert main(["data", "describe", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "FI" in shown and "minutes per day" in shown and "well-being" in shown


def _bad(tmp_path, df: pd.DataFrame, fmt: str = "csv"):
    path = tmp_path / f"bad.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    with pytest.raises(DataValidationError) as err:
        load_windows(path)
    return str(err.value), path


def test_missing_column(tmp_path, small):
    msg, path = _bad(tmp_path, small.drop(columns=["hr_pct_max"]))
    assert str(path) in msg and "missing column(s) ['hr_pct_max']" in msg


def test_unknown_column(tmp_path, small):
    msg, _ = _bad(tmp_path, small.rename(columns={"wellbeing": "wellbeeing"}))
    assert "unknown column(s) ['wellbeeing']" in msg and "allowed:" in msg


def test_wrong_type(tmp_path, small):
    df = small.astype({"enmo_mean": object})
    df.loc[[3, 9], "enmo_mean"] = "high"
    msg, _ = _bad(tmp_path, df)
    assert "column 'enmo_mean' must be numeric" in msg and "rows 4, 10" in msg and "'high'" in msg


def test_fractional_slot(tmp_path, small):
    df = small.astype({"slot": float})
    df.loc[5, "slot"] = 2.5
    msg, _ = _bad(tmp_path, df)
    assert "column 'slot' must hold whole numbers" in msg and "rows 6" in msg


def test_nan_where_not_allowed_and_inf_anywhere(tmp_path, small):
    df = small.copy()
    df["person_id"] = df["person_id"].astype(str)
    df.loc[2, "person_id"] = None
    df.loc[7, "speed_kmh"] = np.inf
    msg, _ = _bad(tmp_path, df, fmt="parquet")
    assert "column 'person_id' has empty values in rows 3" in msg
    assert "column 'speed_kmh' has infinite values in rows 8" in msg


def test_nan_in_features_is_allowed(tmp_path, small):
    assert small["enmo_mean"].isna().any()
    path = tmp_path / "ok.parquet"
    small.to_parquet(path)
    assert len(load_windows(path)) == len(small)


def test_out_of_range_values(tmp_path, small):
    df = small.copy()
    df.loc[1, "slot"] = 144
    df.loc[4, "wellbeing"] = 9
    msg, _ = _bad(tmp_path, df)
    assert "column 'slot' must be in 0..143" in msg and "column 'wellbeing' must be in [0.0, 6.0]" in msg


def test_unknown_activity_label(tmp_path, small):
    df = small.copy()
    df["activity"] = df["activity"].astype(str)
    df.loc[[0, 1], "activity"] = "napping"
    msg, _ = _bad(tmp_path, df)
    assert "unknown label(s) ['napping']" in msg and "rows 1, 2" in msg and "allowed: sleep" in msg


def test_duplicate_person_day_slot(tmp_path, small):
    df = pd.concat([small, small.iloc[[10]]], ignore_index=True)
    msg, _ = _bad(tmp_path, df)
    assert "duplicate (person_id, day, slot) rows: rows 11" in msg and f"rows 11, {len(df)}" in msg


def test_nso_with_too_few_persons(tmp_path, small):
    keep = small[~small.person_id.isin([f"NL-{i:05d}" for i in range(10)])]
    msg, _ = _bad(tmp_path, keep)
    assert "NSO 'NL' has 2 person(s); at least 3 are needed" in msg


def test_empty_files(tmp_path, small):
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("")
    with pytest.raises(DataValidationError, match="the file is empty"):
        load_windows(empty_csv)
    msg, _ = _bad(tmp_path, small.iloc[:0], fmt="parquet")
    assert "the table is empty" in msg


def test_cli_reports_bad_files_in_one_message_without_traceback(tmp_path, small, capsys):
    df = small.drop(columns=["slot"])
    path = tmp_path / "x.csv"
    df.to_csv(path, index=False)
    assert main(["data", "describe", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "missing column(s) ['slot']" in err and "Traceback" not in err
    assert main(["data", "describe", str(tmp_path / "nothing.parquet")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "t.txt").write_text("x")
    assert main(["data", "describe", str(tmp_path / "t.txt")]) == 2
    assert "unsupported file type '.txt'" in capsys.readouterr().err


@pytest.mark.parametrize("sep, named", [(";", "';'"), ("\t", "tabs")])
def test_a_csv_with_another_separator_is_named_as_such(tmp_path, small, sep, named):
    path = tmp_path / "windows.csv"
    small.to_csv(path, index=False, sep=sep)
    with pytest.raises(DataValidationError) as err:
        load_windows(path)
    assert f"separated by {named}" in str(err.value) and "missing column" not in str(err.value)

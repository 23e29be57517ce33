"""Bad configs and arguments: one clear message naming key, value and what is allowed."""

from __future__ import annotations

import pytest

from simulation.cli import main


@pytest.mark.parametrize("content, expected", [
    ("[data.generate]\nseed = -1\n", "data.generate.seed: Input should be greater than or equal to 0 (got -1)"),
    ("[data.generate]\nheterogeneity = 2\n", "data.generate.heterogeneity: Input should be less than or equal to 1"),
    ("[data.generate]\ndays_per_person = 'two'\n", "data.generate.days_per_person: Input should be a valid integer"),
    ("[data]\ntest_fraction = 0.7\nholdout_fraction = 0.4\n", "must be below 1"),
    ("[dataa]\nx = 1\n", "unknown key 'dataa'"),
    ("[data.generate\n", "not valid TOML"),
])
def test_bad_configs(tmp_path, capsys, content, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    assert main(["data", "generate", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err.replace("\n", " ").replace("  ", " ") or expected in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_missing_config_and_bad_set(tmp_path, capsys):
    assert main(["data", "generate", str(tmp_path / "nope.toml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert main(["data", "generate", "--set", "data.generate.seed", "--out", str(tmp_path / "o")]) == 2
    assert "expected key=value" in capsys.readouterr().err


def test_bad_cli_arguments_exit_2_with_usage(capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "generate", "--format", "xlsx"])
    assert e.value.code == 2
    assert "invalid choice: 'xlsx'" in capsys.readouterr().err


def test_every_shipped_experiment_config_is_valid():
    from pathlib import Path

    from simulation.config import load_config

    import tomllib

    from coverage_psi.config import CoverageConfig
    from simulation.sweeps.plan import load_sweep

    files = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))

    def real(f: Path) -> bool:  # needs data/watch or data/recordings, converted first (docs/data_format.md)
        return "real_watch" in f.name or "real_recordings" in f.name

    assert len(files) >= 5
    for f in files:
        raw = tomllib.loads(f.read_text())
        if "sweep" in raw:
            if not real(f):
                assert load_sweep(f)[1]  # every point valid, before anything runs
        elif "coverage" in raw:
            CoverageConfig.model_validate(raw["coverage"])
        elif not real(f):
            load_config(f)


def test_flwr_app_config_in_pyproject_has_every_key_the_apps_read():
    """`flwr run` only accepts overrides of keys present in [tool.flwr.app.config]."""
    import tomllib
    from pathlib import Path

    from simulation.config import ExperimentConfig
    from simulation.experiment import app_run_config

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    declared = set(pyproject["tool"]["flwr"]["app"]["config"])
    assert declared == set(app_run_config(ExperimentConfig(), "", "", False))


@pytest.mark.parametrize("argv, expected", [
    (["bench", "data", "--windows", "10"], "--windows 10: at least"),
    (["bench", "fl", "--rounds", "0"], "--rounds 0: must be at least 1"),
    (["bench", "utility", "--rounds", "0"], "--rounds 0: must be at least 1"),
    (["bench", "runs", "--rounds", "0"], "--rounds 0: must be at least 1"),
    (["bench", "scale", "--rounds", "0"], "--rounds 0: must be at least 1"),
    (["bench", "deployment", "--rounds", "0"], "--rounds 0: must be at least 1"),
    (["bench", "time_use", "--replications", "0"], "--replications 0: must be at least 1"),
    (["bench", "peers", "--rounds", "0"], "--rounds 0: must be at least 1"),
])
def test_every_benchmark_refuses_bad_arguments_before_any_work(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err

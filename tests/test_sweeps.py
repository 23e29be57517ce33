"""Sweeps: all points, parallel without changing results, crash-safe resume, reports, bad files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simulation.cli import main

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["accuracy", "macro_f1", "wellbeing_mae", "epsilon"]


def _sweep_file(tmp_path, name="s", grid=None, rounds=1, seeds="[0]", extra=""):
    grid = grid or '"privacy.target_epsilon" = [2.0, 8.0]'
    path = tmp_path / f"{name}.toml"
    path.write_text(f'''
[sweep]
name = "{name}"
base = "{ROOT / 'experiments' / 'quickstart.toml'}"
seeds = {seeds}
workers = 2
{extra}
[sweep.set]
"privacy.enabled" = true
"federation.rounds" = {rounds}
"training.local_epochs" = 1
"data.generate.nsos" = ["FI", "NL", "PL"]
"data.generate.persons_scale" = 0.3
[sweep.grid]
{grid}
''')
    return path


def test_sweep_runs_every_point_in_parallel_and_reports(tmp_path, capsys):
    sweep = _sweep_file(tmp_path, extra="dp_ceiling = true")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "par"), "--workers", "2"]) == 0
    table = pd.read_csv(tmp_path / "par" / "results.csv")
    assert sorted(table.role) == ["centralized", "centralized_dp", "centralized_dp", "grid", "grid", "non_private"]
    ceiling = table[table.role == "centralized_dp"].sort_values("grid.privacy.target_epsilon")
    assert list(ceiling.privacy_scope) == ["centralized"] * 2 and (ceiling.epsilon <= ceiling["grid.privacy.target_epsilon"] + 1e-6).all()
    grid = table[table.role == "grid"].sort_values("grid.privacy.target_epsilon")
    assert list(grid["grid.privacy.target_epsilon"]) == [2.0, 8.0]
    assert grid.epsilon.iloc[0] <= 2.0001 and grid.epsilon.iloc[1] <= 8.0001
    assert {"nso.FI.accuracy", "wall_s", "seed", "privacy_unit", "secure_aggregation"} <= set(table.columns)

    # one worker gives the same numbers as two
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "seq"), "--workers", "1"]) == 0
    seq = pd.read_csv(tmp_path / "seq" / "results.csv").set_index("point").sort_index()
    par = table.set_index("point").sort_index()
    pd.testing.assert_frame_equal(seq[METRICS], par[METRICS], check_exact=True)

    # any point re-run from its run directory reproduces its numbers
    pid = grid.point.iloc[1]
    assert main(["run", str(tmp_path / "par" / "points" / pid / "config.toml"), "--out", str(tmp_path / "rerun"),
                 "--set", f"output.dir={tmp_path / 'x'}", "--quiet"]) == 0
    again = json.loads((tmp_path / "rerun" / "summary.json").read_text())
    before = json.loads((tmp_path / "par" / "points" / pid / "summary.json").read_text())
    assert again["final"] == before["final"] and again["privacy"]["history"] == before["privacy"]["history"]

    assert main(["report", str(tmp_path / "par")]) == 0
    report = (tmp_path / "par" / "report" / "report.md").read_text()
    for section in ("## Privacy/utility", "## Accuracy per round", "## Per-NSO accuracy", "## SecAgg+ time cost",
                    "## Results", "Command: `ppml sweep", "flwr 1.41.0", "seeds: [0]"):
        assert section in report
    for png in ("privacy_utility.png", "accuracy_per_round.png", "per_nso_accuracy.png"):
        assert (tmp_path / "par" / "report" / png).stat().st_size > 10_000


def test_a_killed_sweep_resumes_without_redoing_or_half_writing(tmp_path):
    sweep = _sweep_file(tmp_path, "k", grid='"privacy.target_epsilon" = [1.0, 2.0, 4.0, 8.0]', rounds=3)
    out = tmp_path / "k-out"
    proc = subprocess.Popen([sys.executable, "-m", "simulation.cli", "sweep", str(sweep), "--out", str(out)],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    rows = 0
    while time.time() < deadline and rows < 2:
        time.sleep(0.2)
        try:
            rows = len(pd.read_csv(out / "results.csv"))
        except (FileNotFoundError, pd.errors.EmptyDataError):
            rows = 0
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, mid-run
    proc.wait()
    assert 2 <= rows < 6, "the kill should land mid-sweep"
    table = pd.read_csv(out / "results.csv")  # never half-written: every row complete
    assert table[METRICS].notna().all().all() and len(table) >= 2
    finished = {p: (out / "points" / p / "summary.json").stat().st_mtime_ns for p in table.point}
    time.sleep(0.5)
    assert main(["sweep", str(sweep), "--out", str(out)]) == 0
    final = pd.read_csv(out / "results.csv")
    assert len(final) == 6 and final[METRICS].notna().all().all()
    for p, mtime in finished.items():  # finished points were skipped, not redone
        assert (out / "points" / p / "summary.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("grid, extra, expected", [
    ('"privacy.target_epsilonn" = [1.0]', "", "unknown key 'privacy.target_epsilonn'"),
    ('"privacy.target_epsilon" = []', "", "sweep.grid.privacy.target_epsilon must be a non-empty list"),
    ('"privacy.target_epsilon" = ["high"]', "", "privacy.target_epsilon: Input should be a valid number"),
    ('"privacy.target_epsilon" = [1.0]\n"federation.strategy" = ["fedavg", "fedsgd"]', "",
     "point grid seed=0 privacy.target_epsilon=1.0 federation.strategy='fedsgd'"),
    ("", "", "sweep.grid is empty"),
    ('"privacy.target_epsilon" = [1.0]', "colour = 'red'", "unknown key 'sweep.colour'"),
])
def test_bad_sweep_files_fail_before_any_run(tmp_path, capsys, grid, extra, expected):
    sweep = _sweep_file(tmp_path, grid=grid or " ", extra=extra)
    if not grid:
        sweep.write_text(sweep.read_text().replace("[sweep.grid]\n", ""))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err.replace("\n", " ") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_ppml_run_refuses_a_sweep_file(tmp_path, capsys):
    sweep = _sweep_file(tmp_path)
    assert main(["run", str(sweep), "--out", str(tmp_path / "o")]) == 2
    assert "is a sweep file" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_changing_fixed_settings_never_reuses_old_points(tmp_path):
    from simulation.sweeps.plan import load_sweep

    a = _sweep_file(tmp_path, "a", rounds=1)
    b = _sweep_file(tmp_path, "b", rounds=2)
    ids_a = {p.id for p in load_sweep(a)[1]}
    ids_b = {p.id for p in load_sweep(b)[1]}
    assert ids_a.isdisjoint(ids_b)
    (tmp_path / "wide").mkdir()
    wider = _sweep_file(tmp_path / "wide", "a", grid='"privacy.target_epsilon" = [2.0, 8.0, 32.0]', rounds=1)
    assert ids_a <= {p.id for p in load_sweep(wider)[1]}  # a wider grid keeps the finished points


def test_sweep_on_ray_gives_the_same_table_as_the_process_pool(tmp_path):
    """`ppml sweep --ray` on a local Ray instance, inside a network namespace with only loopback."""
    import shlex
    import shutil

    assert shutil.which("unshare") and shutil.which("ip"), "unshare and ip (util-linux, iproute2) are needed"
    sweep = _sweep_file(tmp_path, "r", extra="references = false")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "pool")]) == 0
    cmd = [sys.executable, "-m", "simulation.cli", "sweep", str(sweep), "--out", str(tmp_path / "ray"), "--ray",
           "--workers", "2"]
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c",
                           "ip link set lo up && exec " + shlex.join(cmd)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    pool = pd.read_csv(tmp_path / "pool" / "results.csv").set_index("point").sort_index()
    ray = pd.read_csv(tmp_path / "ray" / "results.csv").set_index("point").sort_index()
    assert len(ray) == 2 and list(ray.index) == list(pool.index)  # same plan, same point ids
    pd.testing.assert_frame_equal(ray[METRICS], pool[METRICS], check_exact=True)
    # resuming on Ray finds every point done and runs nothing
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c",
                           "ip link set lo up && exec " + shlex.join(cmd)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0 and "2 already done, 0 to run" in proc.stdout + proc.stderr


def test_sweep_refuses_an_unreachable_ray_cluster(tmp_path, capsys):
    sweep = _sweep_file(tmp_path, "u", extra="references = false")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "u"), "--ray", "127.0.0.1:1"]) == 2
    assert "cannot connect to a Ray cluster" in capsys.readouterr().err

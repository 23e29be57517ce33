"""Time-use statistics from sensor data: the correction, the truth kept apart, the DP release and
its accounting, pooled figures under SecAgg+, and the commands (docs/time_use.md)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w

from clients.estimation import quantify
from clients.estimation.config import InferenceConfig
from clients.estimation.release import Mechanism, noise_multiplier
from datasets.inference_data import TRUTH_DIR
from simulation.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"data": {"generate": {"nsos": ["FI", "NL", "PL"], "persons_scale": 0.3}},
         "federation": {"rounds": 3}, "inference": {"enabled": True, "bootstrap": 30}}
COLUMNS = ["nso", "group", "activity", "minutes", "ci_low", "ci_high", "minutes_classify_count",
           "minutes_diary_sample", "true_minutes"]


def _run(tmp_path, name, **sections) -> Path:
    cfg = {**SMALL, **sections, "output": {"dir": str(tmp_path / "runs")}}
    cfg["inference"] = {**SMALL["inference"], **sections.get("inference", {})}
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(cfg))
    assert main(["run", str(path), "--out", str(tmp_path / name), "--quiet"]) == 0
    return tmp_path / name


@pytest.mark.parametrize("seed", range(5))
def test_the_correction_recovers_known_shares_from_a_constructed_confusion_matrix(seed):
    rng = np.random.default_rng(seed)
    k = 6
    m = rng.dirichlet(np.ones(k), size=k) * 0.5 + np.eye(k) * 0.5  # rows sum to 1, diagonal dominant
    pi = rng.dirichlet(np.ones(k))
    p = m.T @ pi  # what a classifier with confusion m reports for a population with shares pi
    assert np.allclose(quantify.adjusted(p, m), pi, atol=1e-6)
    assert not np.allclose(quantify.classify_count(p), pi, atol=1e-3)  # classify-and-count is biased
    noisy = p + rng.normal(0, 0.05, k)  # off the simplex: the estimate stays a distribution
    est = quantify.adjusted(noisy, m)
    assert est.min() >= 0 and est.sum() == pytest.approx(1.0)
    proj = quantify.project_simplex(noisy)
    assert proj.min() >= 0 and proj.sum() == pytest.approx(1.0)
    assert quantify.row_normalised(np.zeros((k, k))).tolist() == np.eye(k).tolist()  # unseen labels: identity


def test_estimation_code_never_reads_the_true_diaries():
    """Only the simulation's evaluation may name the truth folder; what an NSO loads has no labels."""
    offenders = []
    for pkg in ("clients", "server"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
                    {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
            strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            if "TRUTH_DIR" in names or any(s == TRUTH_DIR or "truth-" in s or f"{TRUTH_DIR}/" in s for s in strings):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.parametrize("method, via", [("secaggplus", "secagg+"), ("ckks", "ckks")])
def test_a_run_publishes_time_use_with_pooled_figures_under_secagg(tmp_path, method, via):
    run = _run(tmp_path, "secagg", secure_aggregation={"enabled": True, "method": method})
    table = pd.read_csv(run / "time_use.csv")
    assert list(table.columns) == COLUMNS
    assert set(table.nso) == {"FI", "NL", "PL", "ALL"} and "all" in set(table.group)
    assert {"sex:female", "age_group:65+", "employment:student", "daytype:weekend"} <= set(table.group)
    tu = json.loads((run / "summary.json").read_text())["time_use"]
    for key in ("mae_minutes", "mae_minutes_classify_count", "ci_coverage", "release_epsilon"):
        assert key in tu
    assert "sensor-only sample" in tu["truth"]  # which truth true_minutes is
    assert tu["pooled_via"] == via and tu["release_epsilon"] is None and 0 < tu["ci_coverage"] <= 1
    assert (run / "time_use.png").stat().st_size > 20_000
    prep = next((tmp_path / "runs" / ".prepared").iterdir())
    sensor = np.load(next((prep / "inference-x3").glob("sensor-FI.npz")))
    assert "y" not in sensor.files and "wellbeing" not in sensor.files  # an NSO's input holds no diary

    # the pooled figures are the person-day weighted means of the national ones, up to SecAgg+'s
    # quantization (its bound is reported), though the coordinator saw only the sums
    from clients.estimation.cells import membership, person_days
    from clients.estimation.national import setting_from_json
    from datasets.inference_data import load_sample

    from simulation.inference.evaluate import read_release

    release = read_release(run)
    st = setting_from_json(json.dumps(release["setting"]))
    weighted, total = 0, 0
    for nso in ("FI", "NL", "PL"):
        sample = load_sample(prep / "inference-x3", "sensor", nso)
        n = membership(sample, (d := person_days(sample, st.cfg.max_days)), st.cells).sum(axis=0)
        est = table[table.nso == nso].minutes.to_numpy().reshape(len(st.cells), -1)
        weighted, total = weighted + n[:, None] * est, total + n[:, None]
    bound = release["quantization_error_bound"]["n_est"] / total.min()  # in minutes per day
    assert bound < 0.05
    assert np.abs(table[table.nso == "ALL"].minutes.to_numpy() - (weighted / total).ravel()).max() <= bound + 1e-9

    # the DP release of PPI++ under SecAgg+: pooled rows from the NSOs' summed noisy sums
    assert _estimate(run, tmp_path / "dp", "inference.epsilon=1.0") == 0
    dp = json.loads((tmp_path / "dp" / "summary.json").read_text())["time_use"]
    assert dp["estimator"] == "auto" and dp["pooled_via"] == via
    assert dp["release_epsilon"] == pytest.approx(1.0, rel=1e-6) and dp["epsilon_labelled"] == dp["epsilon_sensor_only"]
    published = json.loads((tmp_path / "dp" / "release.json").read_text())
    assert len(published["pooled"]) == len(table[table.nso == "ALL"]) and published["pooled_confusion"] is None

    # publishing only the pooled rows: every NSO adds a share of the noise under SecAgg+, no national table
    assert _estimate(run, tmp_path / "pooled", "inference.epsilon=1.0", "inference.publish='pooled'") == 0
    only = json.loads((tmp_path / "pooled" / "release.json").read_text())
    assert only["publish"] == "pooled" and all(r["rows"] == [] for r in only["national"].values())
    assert len(only["pooled"]) == len(published["pooled"])
    assert all(0 <= r["ci_low"] <= r["minutes"] <= r["ci_high"] <= 1440 for r in only["pooled"])
    pooled_tu = json.loads((tmp_path / "pooled" / "summary.json").read_text())["time_use"]
    assert pooled_tu["release_epsilon"] == pytest.approx(1.0, rel=1e-6)
    assert set(pd.read_csv(tmp_path / "pooled" / "time_use.csv").nso) == {"ALL"}

    # truth gone: estimation from the finished run still works (and only evaluation would need it)
    from clients.estimation.national import estimate_national
    from clients.model import ModelConfig, build_model, set_weights
    from clients.privacy.randomness import node_randomness

    shutil.rmtree(prep / "inference-x3" / TRUTH_DIR)
    st = setting_from_json(json.dumps(release["setting"]))
    weights = np.load(run / "model.npz")
    model = build_model(ModelConfig(), 0, weights["arr_0"].shape[1], 13)
    set_weights(model, [weights[f"arr_{i}"] for i in range(len(weights.files))])
    noise = node_randomness("reproducible", {}, 0, "FI")  # what the simulation's FI node holds
    own = None  # PPI uses no confusion matrix: the ClientApp passes none
    pooled = release["pooled_confusion"]  # none for PPI, which skips the confusion exchange
    nat = estimate_national(model, str(prep), "FI", st, 0, noise, own, None if pooled is None else np.array(pooled))
    assert [r["minutes"] for r in nat.rows] == pytest.approx(list(table[table.nso == "FI"].minutes))


    # repeated samples from a simulated population (`ppml bench time_use`): the same numbers twice,
    # every row type reported, and pooling three NSOs' persons makes the diary sample's error smaller
    from simulation.inference.replicate import replication_study

    study = replication_study(run, run, replications=3, scale=1.0)
    assert study == replication_study(run, run, replications=3, scale=1.0)
    rows = study["row_types"]
    assert {"overall", "breakdown:sex", "breakdowns", "pooled"} <= set(rows)
    assert all(0 <= r["coverage"] <= 1 and np.isfinite(r["mae_minutes"]["default"]) for r in rows.values())
    assert rows["pooled"]["mae_minutes"]["diary"] < rows["overall"]["mae_minutes"]["diary"]


def _estimate(run, out, *sets) -> int:
    argv = ["estimate", str(run), "--set", "inference.bootstrap=20", "--out", str(out), "--quiet"]
    return main(argv + [a for s in sets for a in ("--set", s)])


def test_releases_compose_on_the_models_ledger_never_share_noise_and_a_budget_caps_them(tmp_path, capsys):
    import dp_accounting as dpa

    run = _run(tmp_path, "base", inference={"enabled": False})
    rep = "randomness='reproducible'"
    assert _estimate(run, tmp_path / "e2", "inference.epsilon=2.0", rep) == 0
    assert _estimate(run, tmp_path / "e1", "inference.epsilon=1.0", rep) == 0
    tu = json.loads((tmp_path / "e1" / "summary.json").read_text())["time_use"]
    assert tu["release_epsilon"] == pytest.approx(1.0, rel=1e-6)  # calibrated to the target, not below it
    assert tu["epsilon_sensor_only"] == tu["epsilon_labelled"] and tu["release_number"] == 2
    # the second release reports the total of both, as dp-accounting's PLD composes them
    z1, z2 = noise_multiplier(1.0, tu["delta"]), noise_multiplier(2.0, tu["delta"])
    acc = dpa.pld.PLDAccountant()
    acc.compose(dpa.GaussianDpEvent(z1)).compose(dpa.GaussianDpEvent(z2))
    assert tu["ledger"]["releases"] == 2
    assert tu["ledger"]["epsilon"] == pytest.approx(acc.get_epsilon(tu["delta"]), rel=1e-3)
    assert 2.0 < tu["ledger"]["epsilon"] < 3.0
    ledger = json.loads((run / "release_ledger.json").read_text())
    assert [r["number"] for r in ledger["releases"]] == [1, 2]

    # each release draws its own noise: the same epsilon again, on a copy of the model with a fresh
    # ledger, repeats release 1 exactly (reproducible mode); on the same model it is release 3
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("config.toml", "model.npz"):
        shutil.copy(run / f, copy / f)
    assert _estimate(copy, tmp_path / "again", "inference.epsilon=2.0", rep) == 0
    assert _estimate(run, tmp_path / "third", "inference.epsilon=2.0", rep) == 0
    first, again, third = (pd.read_csv(tmp_path / d / "time_use.csv") for d in ("e2", "again", "third"))
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first.minutes_classify_count, third.minutes_classify_count)

    # a budget refuses, before any work, a release that would overspend it
    capsys.readouterr()
    assert _estimate(run, tmp_path / "over", "inference.epsilon=1.0", "inference.budget=3.5", rep) == 2
    err = capsys.readouterr().err
    assert "inference.budget = 3.5" in err and "would bring the total to" in err and "Traceback" not in err
    assert not (tmp_path / "over" / "release.json").exists()
    assert len(json.loads((run / "release_ledger.json").read_text())["releases"]) == 3

    # `ppml estimate` releases with secure noise unless told otherwise; release.json holds only
    # what the epsilon covers - DP PPI++'s intervals are read from its noisy sums, so they are
    # released - and quality.json the rest
    assert _estimate(copy, tmp_path / "s1", "inference.epsilon=2.0") == 0
    assert "randomness = \"secure\"" in (tmp_path / "s1" / "config.toml").read_text()
    published = json.loads((tmp_path / "s1" / "release.json").read_text())
    quality = json.loads((tmp_path / "s1" / "quality.json").read_text())
    assert published["setting"]["cfg"]["estimator"] == "auto" and published["intervals"].startswith("released")
    for rows in (published["pooled"], next(iter(published["national"].values()))["rows"]):
        assert {"ci_low", "ci_high"} <= set(rows[0]) and "minutes_diary_sample" not in rows[0]
        assert all(r["ci_low"] <= r["minutes"] <= r["ci_high"] for r in rows)
    assert "minutes_diary_sample" in quality["pooled"][0] and "ci_low" not in quality["pooled"][0]
    assert "NOT covered" in quality["note"]


def test_an_inference_delta_not_below_one_over_n_is_refused(tmp_path, capsys):
    run = _run(tmp_path, "base", inference={"enabled": False})
    assert _estimate(run, tmp_path / "d", "inference.epsilon=1.0", "inference.delta=0.5") == 2
    err = capsys.readouterr().err
    assert "inference.delta = 0.5 is not below 1/n" in err and "Traceback" not in err


def test_a_mechanism_refuses_a_block_it_has_not_accounted():
    mech = Mechanism(1.0, {"minutes": 10.0}, 1e-5)
    with pytest.raises(ValueError, match="no accounted sensitivity"):
        mech.apply({"minutes": np.zeros(3), "extra": np.zeros(2)}, np.random.default_rng(0))
    assert Mechanism(0.0, {"minutes": 1.0}, 1e-5).epsilon() is None


@pytest.mark.parametrize("sets, expected", [
    (["inference.max_days=0"], "inference.max_days"),
    (["inference.estimator='median'"], "inference.estimator"),
    (["inference.groups=['sex','sex']"], "lists a group twice"),
    (["inference.groups=['region']"], "inference.groups"),
    (["inference.epsilon=-1"], "inference.epsilon"),
    (["inference.enabled=true", "engine.name='centralized'"], "runs in the NSOs of a federation"),
    (["inference.enabled=true", "data.path='x'"], "needs inference.sensor_only_path"),
    (["inference.publish='pooled'"], "inference.publish = 'pooled' is the DP release"),
    (["inference.enabled=true", "inference.epsilon=1.0", "inference.publish='pooled'"], "needs secure_aggregation"),
    (["inference.honest_nsos=2"], "applies to inference.publish = 'pooled' only"),
])
def test_a_bad_inference_config_gets_one_clear_message(tmp_path, capsys, sets, expected):
    argv = ["run", "--quiet", "--set", f"output.dir='{tmp_path}'"] + [a for s in sets for a in ("--set", s)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_estimate_needs_a_finished_run(tmp_path, capsys):
    assert main(["estimate", str(tmp_path)]) == 2
    assert "needs the directory of a finished `ppml run`" in capsys.readouterr().err


def test_inference_defaults_are_what_docs_say():
    cfg = InferenceConfig()
    assert (cfg.estimator, cfg.confusion, cfg.max_days, cfg.epsilon) == ("auto", "pooled", 2, None)
    assert cfg.resolved_estimator == "ppi" and InferenceConfig(epsilon=1.0).resolved_estimator == "ppi"


def test_a_sweep_over_release_epsilons_reports_time_use(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(tomli_w.dumps({**SMALL, "output": {"dir": str(tmp_path / "runs")}}))
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'[sweep]\nname = "tu"\nbase = "{base}"\nseeds = [0]\nreferences = false\n'
                     '[sweep.set]\n"inference.bootstrap" = 20\n[sweep.grid]\n"inference.epsilon" = [1.0, 8.0]\n')
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "sw")]) == 0
    table = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert sorted(table["time_use.release_epsilon"].round(1)) == [1.0, 8.0]
    assert main(["report", str(tmp_path / "sw")]) == 0
    report = (tmp_path / "sw" / "report" / "report.md").read_text()
    assert "## Time-use statistics" in report and (tmp_path / "sw" / "report" / "time_use.png").exists()


def test_an_nso_estimates_from_its_own_imported_sensor_only_table(tmp_path, capsys):
    """Real sensor-only persons (no diaries): `ppml data import --sensor-only`, then a run on imported
    diary data with inference.sensor_only_path; no truth exists, so no error is claimed."""
    from datasets.io import write_dataset
    from datasets.synthetic.generator import GeneratorSettings, generate, generate_sensor_only

    settings = GeneratorSettings(nsos=["FI", "NL", "PL"], persons_scale=0.3)
    write_dataset(generate(settings), tmp_path / "diary")
    sensor = generate_sensor_only(settings, 3.0)
    write_dataset(sensor, tmp_path / "with_labels")  # a table that still has its diaries: refused as sensor-only
    capsys.readouterr()
    assert main(["data", "import", str(tmp_path / "with_labels"), "--out", str(tmp_path / "x"), "--sensor-only"]) == 2
    err = capsys.readouterr().err
    assert "holds diary labels, which a sensor-only table does not have" in err and "Traceback" not in err
    sensor.windows["activity"] = pd.Categorical([None] * len(sensor.windows), categories=sensor.windows["activity"].cat.categories)
    write_dataset(sensor, tmp_path / "raw")
    assert main(["data", "import", str(tmp_path / "raw"), "--out", str(tmp_path / "sensor"), "--sensor-only"]) == 0

    base = {"data": {"path": str(tmp_path / "diary")}, "federation": {"rounds": 2},
            "inference": {"enabled": True, "bootstrap": 20}, "output": {"dir": str(tmp_path / "runs")}}
    missing = tmp_path / "missing.toml"
    missing.write_text(tomli_w.dumps(base))
    capsys.readouterr()
    assert main(["run", str(missing), "--quiet"]) == 2
    assert "needs inference.sensor_only_path" in capsys.readouterr().err
    base["inference"]["sensor_only_path"] = str(tmp_path / "sensor")
    cfg = tmp_path / "own.toml"
    cfg.write_text(tomli_w.dumps(base))
    assert main(["run", str(cfg), "--out", str(tmp_path / "own"), "--quiet"]) == 0
    tu = json.loads((tmp_path / "own" / "summary.json").read_text())["time_use"]
    assert tu["truth"].startswith("none") and tu["mae_minutes"] is None and tu["ci_coverage"] is None
    table = pd.read_csv(tmp_path / "own" / "time_use.csv")
    assert table.true_minutes.isna().all() and table.minutes.notna().any()
    assert set(table.nso) == {"FI", "NL", "PL", "ALL"}

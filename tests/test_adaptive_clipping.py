"""Adaptive clipping in the federation scope (Andrew et al. 2021): one person moves what an NSO
sends by at most the plan's sensitivity whatever clip scale the server picks, the clip follows the
quantile it is told to, every epsilon is still dp-accounting's, and bad settings are refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from clients.privacy.adaptive_clip import checked_scale, next_clip_scale, sent_vectors, split_count
from clients.privacy.federation_plan import sent_sensitivity
from simulation.cli import main

from .test_federation_dp import FED, _google


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    code = main(["run", *FED, "--set", f"output.dir={tmp_path / 'runs'}", "--out", str(out),
                 "--set", "privacy.target_epsilon=4", "--set", "privacy.local_batch=8", *extra])
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()] if code == 0 else []
    return code, rows, out


@pytest.mark.parametrize("clip_scale", [0.01, 1.0, 50.0])
def test_one_person_moves_the_sent_vector_by_at_most_the_sensitivity(clip_scale):
    from clients.model import ModelConfig, build_model
    from clients.privacy.person_updates import clipped_update_sum
    from datasets.prepared import Arrays

    rng = np.random.default_rng(3)
    n = 50
    model = build_model(ModelConfig(hidden=8, layers=1), 0, 31, 13)
    data = Arrays(rng.normal(size=(n, model.trunk[0].in_features)).astype(np.float32), rng.integers(0, 13, n),
                  np.full(n, np.nan, np.float32), np.repeat(np.arange(5), 10))
    clip, count_scale = 0.2, 0.15

    def sent(persons):
        sums, stats = clipped_update_sum(model, data, persons, 3, 0.5, clip * clip_scale, 0.2)
        return np.concatenate([v.ravel() for v in sent_vectors(sums, stats["persons"], stats["clipped"],
                                                                clip_scale, count_scale)])

    without = sent(np.arange(4))
    for extra in range(5):
        others = np.array([p for p in range(5) if p != extra])
        moved = np.linalg.norm(sent(np.arange(5)) - sent(others))
        assert moved <= math.hypot(clip, count_scale / 2) * (1 + 1e-5)
    assert len(without) == sum(p.numel() for p in model.parameters()) + 1  # the count rides as one coordinate
    assert sent_sensitivity(clip, count_scale, 0.0, 10) == pytest.approx(math.hypot(clip, count_scale / 2))
    assert sent_sensitivity(clip, 0.0, 0.0, 10) == clip  # a fixed clip: the update alone


def test_the_clip_scale_update_moves_toward_the_quantile_and_the_count_splits_off():
    grow, low = next_clip_scale(1.0, -50.0, 100.0, 0.5, 0.2)  # nobody unclipped: the clip grows
    shrink, high = next_clip_scale(1.0, 50.0, 100.0, 0.5, 0.2)  # everybody unclipped: it shrinks
    assert (low, high) == (0.0, 1.0) and grow == pytest.approx(math.exp(0.1)) and shrink == pytest.approx(math.exp(-0.1))
    assert next_clip_scale(2.0, 0.0, 100.0, 0.5, 0.2)[0] == 2.0  # at the quantile it stays
    model, count = split_count([np.ones(3), np.array([0.3])], 0.1)
    assert len(model) == 1 and count == pytest.approx(3.0)
    whole = [np.ones(3)]
    assert split_count(whole, 0.0) == (whole, None)
    for bad in (0.0, -1.0, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="clip scale"):
            checked_scale(bad)


@pytest.mark.parametrize("start, direction", [(0.001, 1), (100.0, -1)])
def test_a_run_adapts_its_clip_and_its_epsilons_are_dp_accountings(tmp_path, start, direction):
    """A clip far below every update norm grows each round, one far above shrinks; the epsilon of the
    whole mechanism (update and count together) is recomputed by dp-accounting."""
    code, rows, out = _run(tmp_path, f"c{start}", "--set", "federation.rounds=4", "--set", "privacy.clip_quantile=0.5",
                           "--set", f"privacy.max_grad_norm={start}")
    assert code == 0
    clips = [r["dp.clip"] for r in rows if "dp.clip" in r]
    assert len(clips) == 4 and clips[0] == pytest.approx(start)
    assert all(direction * (b - a) > 0 for a, b in zip(clips, clips[1:]))
    plan = next(r for r in rows if r.get("event") == "federation_dp")
    assert plan["count_scale"] > 0 and plan["clip_quantile"] == 0.5
    assert plan["effective_clip"] >= math.hypot(start, plan["count_scale"] / 2)
    p = json.loads((out / "summary.json").read_text())["privacy"]
    assert _google(p["history"]["federation"], p["delta"], "rdp") == pytest.approx(p["epsilon_accounted"], rel=0.01)
    assert p["epsilon_accounted"] <= 4.0 * 1.0001


@pytest.mark.parametrize("setting, message", [
    (["privacy.scope='nso'", "privacy.clip_quantile=0.5"], "clip_quantile (adaptive clipping) is built for"),
    (["privacy.clip_quantile=1.5"], "privacy.clip_quantile"),
    (["privacy.clip_quantile=0.5", "privacy.clip_count_noise=0.0001"], "privacy.clip_count_noise = 0.0001"),
])
def test_bad_adaptive_clipping_settings_are_refused_before_any_work(tmp_path, capsys, setting, message):
    code, _, out = _run(tmp_path, "bad", *[x for s in setting for x in ("--set", s)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (out / "metrics.jsonl").exists()

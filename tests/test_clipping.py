"""The fast per-unit clipping equals Opacus' own per-sample clipping (GradSampleModule + DPOptimizer)."""

from __future__ import annotations

import copy

import pytest
import torch
from opacus.grad_sample import GradSampleModule
from opacus.optimizers import DPOptimizer

from clients.privacy.clipping import LinearStackClipper
from clients.model import ActivityNet, ModelConfig
from clients.training import loss_fn


def _batch(n: int = 300, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 31, generator=g)
    y = torch.randint(0, 13, (n,), generator=g)
    wb = torch.randint(0, 7, (n,), generator=g).float()
    wb[torch.rand(n, generator=g) < 0.4] = float("nan")
    person = torch.randint(0, 12, (n,), generator=g)
    return x, y, wb, person


def _opacus_clipped_sum(model, x, y, wb, person, max_norm):
    gsm = GradSampleModule(copy.deepcopy(model), loss_reduction="sum")
    opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=0.1), noise_multiplier=0.0, max_grad_norm=max_norm,
                      expected_batch_size=1, loss_reduction="sum")
    loss_fn(gsm(x), y, wb, 0.5, 13, "none").sum().backward()
    params = [p for p in gsm.parameters()]
    if person is not None:
        k = int(person.max()) + 1
        for p in params:
            p.grad_sample = torch.zeros((k, *p.shape)).index_add_(0, person, p.grad_sample)
    opt.clip_and_accumulate()
    return [p.summed_grad for p in params]


@pytest.mark.parametrize("unit", ["record", "person"])
@pytest.mark.parametrize("max_norm", [0.05, 1.0, 1e4])
def test_clipped_sums_equal_opacus(unit, max_norm):
    torch.manual_seed(3)
    model = ActivityNet(ModelConfig(hidden=32, layers=2), n_features=31, n_classes=13)
    x, y, wb, person = _batch()
    unit_of_window = person if unit == "person" else None
    expected = _opacus_clipped_sum(model, x, y, wb, unit_of_window, max_norm)

    clipper = LinearStackClipper(model)
    stats = clipper.clip_and_sum(loss_fn(model(x), y, wb, 0.5, 13, "none"), max_norm, unit_of_window)
    got = [p.summed_grad for p in model.parameters()]
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)
    assert stats["units"] == (len(person.unique()) if unit == "person" else len(x))
    if max_norm == 1e4:
        assert stats["clipped"] == 0
    if max_norm == 0.05:
        assert stats["clipped"] == stats["units"]


def test_clipper_refuses_models_with_other_parametrised_layers():
    with pytest.raises(TypeError, match="only nn.Linear"):
        LinearStackClipper(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3)))

"""Reflow straightens a 2-D flow and improves its one-step samples; distillation on graph batches."""

from __future__ import annotations

import copy

import pytest
import torch

from sciflow.datasets.toy2d import TOY2D
from sciflow.distill import GridTime, distill, generate_pairs, reflow, straightness, train_on_pairs
from sciflow.domains.toy import Config, train
from sciflow.metrics import wasserstein2
from sciflow.solvers import odeint


@pytest.fixture(scope="module")
def toy_base():
    return train(Config().replace(train={"steps": 400, "seed": 0, "progress": False})).net


def test_reflow_reduces_straightness_and_one_step_w2(toy_base):
    g = torch.Generator().manual_seed(0)
    pairs = generate_pairs(toy_base, TOY2D["8gaussians"](2000, generator=g), steps=16)
    assert pairs.nfe == 64 and pairs.count == 2000
    re = reflow(copy.deepcopy(toy_base), pairs, steps=400, lr=1e-3, seed=1)
    x0, ref = TOY2D["8gaussians"](1000, generator=g), TOY2D["moons"](1000, generator=g)
    s_base, s_re = straightness(toy_base, x0, steps=16), straightness(re.model, x0, steps=16)
    assert s_re.value < 0.2 * s_base.value
    with torch.no_grad():
        w_base = wasserstein2(odeint(toy_base, x0, steps=1).x, ref)
        w_re = wasserstein2(odeint(re.model, x0, steps=1).x, ref)
    assert w_re < 0.7 * w_base
    assert all(not p.requires_grad for p in re.model.parameters())  # the returned EMA copy


def test_straightness_is_zero_for_a_constant_field_and_positive_for_rotation():
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    const = straightness(lambda x, t, cond=None, batch=None: torch.ones_like(x), x0, steps=8)
    assert const.value < 1e-12 and abs(const.speed - 1.0) < 1e-6
    rot = straightness(lambda x, t, cond=None, batch=None: torch.stack([-x[:, 1], x[:, 0]], 1), x0, steps=8)
    assert rot.value > 0.01


def test_grid_time_lies_on_the_euler_grid():
    t = GridTime(4)(1000, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                    dtype=torch.float32)
    assert set(t.tolist()) == {0.0, 0.25, 0.5, 0.75}
    with pytest.raises(ValueError, match="k must be"):
        GridTime(0)


class _GraphNet(torch.nn.Module):
    """Per-node MLP on [x, t, c] with a per-node condition c; enough to fit straight pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.f = torch.nn.Sequential(torch.nn.Linear(5, 32), torch.nn.SiLU(), torch.nn.Linear(32, 2))

    def forward(self, x, t, *, cond=None, batch=None):
        return self.f(torch.cat([x, t[batch][:, None], cond["c"]], dim=1))


def test_one_step_distillation_on_graph_batches():
    torch.manual_seed(0)
    sizes = torch.randint(2, 5, (60,))
    batch = torch.repeat_interleave(torch.arange(60), sizes)
    c = torch.randn(batch.numel(), 2)
    teacher = _GraphNet()
    x0 = torch.randn(batch.numel(), 2)
    pairs = generate_pairs(teacher, x0, steps=8, cond={"c": c}, batch=batch)
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        before = ((odeint(student, x0, steps=1, cond={"c": c}, batch=batch).x - pairs.x1) ** 2).mean()
    res = distill(student, pairs, k=1, steps=300, batch_size=16, lr=3e-3)
    with torch.no_grad():
        after = ((odeint(res.model, x0, steps=1, cond={"c": c}, batch=batch).x - pairs.x1) ** 2).mean()
    assert res.times == 1 and after < 0.5 * before


def test_bad_arguments():
    pairs = generate_pairs(lambda x, t, cond=None, batch=None: x, torch.zeros(4, 2), steps=2)
    with pytest.raises(ValueError, match="times must be"):
        train_on_pairs(torch.nn.Linear(2, 2), pairs, times="grid")
    with pytest.raises(TypeError, match="student must be"):
        train_on_pairs(lambda x: x, pairs)

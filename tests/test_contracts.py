"""The core contracts, checked on every implementation the registries hold.

Every path family (:data:`sciflow.paths.PATHS`) with every scheduler (:data:`sciflow.paths.SCHEDULERS`)
x every target (:data:`sciflow.matcher.TARGETS`) x every solver (:data:`sciflow.solvers.SOLVERS`, and
the SDE sampler) x dense rows and a ragged graph batch: the loss is finite and differentiable,
sampling returns finite values of the right shape, the velocity field and every conversion are
finite at t = 0 and t = 1 exactly, the conversions invert each other away from the ends, and the
NFE a solver reports is what it spent. A new path, scheduler, target or solver added to its
registry is checked here without editing this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from sciflow import graphs
from sciflow.matcher import TARGETS, FlowMatcher
from sciflow.nn import EGNN, GraphContext, GraphVelocityField, MLPVelocity
from sciflow.paths import PATHS, SCHEDULERS, ProbPath
from sciflow.solvers import SOLVERS, odeint, sde_sample
from sciflow.sources import (
    DirectionalPruning,
    GaussianSource,
    NormAlignedGaussianSource,
    Source,
    as_source,
)

SCHEDULER_NAMES = {cls: name for name, cls in reversed(SCHEDULERS.items())}  # one name a class
PATH_CASES = [(f"{family}-{name}", family, name) for family in PATHS for name in SCHEDULER_NAMES.values()]
SAMPLERS = [*SOLVERS, "sde"]
STEPS = 3


def make_path(family: str, scheduler: str) -> ProbPath:
    return PATHS[family](SCHEDULERS[scheduler]())


@dataclass(frozen=True)
class Case:
    """One kind of data with a small untrained model for it."""

    model: torch.nn.Module
    x1: Tensor
    cond: Any
    batch: Tensor | None
    source: Source


def _dense() -> Case:
    torch.manual_seed(0)
    x1 = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    return Case(MLPVelocity(dim=3, hidden=16, layers=2), x1, None, None, GaussianSource())


def _graph() -> Case:
    torch.manual_seed(0)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([3, 5, 2]))
    x1 = graphs.center(torch.randn(10, 3, generator=torch.Generator().manual_seed(1)), batch)
    z = torch.tensor([6, 1, 1, 8, 6, 1, 1, 7, 1, 1])
    net = GraphVelocityField(EGNN(hidden=8, layers=1, vector_channels=2, num_rbf=4, time_dim=8))
    return Case(net, x1, GraphContext(z=z), batch, GaussianSource(center_graphs=True))


DATA = {"dense": _dense, "graph": _graph}


@pytest.fixture(scope="module", params=list(DATA))
def data(request: pytest.FixtureRequest) -> Case:
    return DATA[request.param]()


def _matcher(family: str, scheduler: str, target: str, case: Case) -> FlowMatcher:
    return FlowMatcher(path=make_path(family, scheduler), source=case.source, target=target)


def _assert_finite(x: Tensor, what: str) -> None:
    bad = ~torch.isfinite(x)
    assert not bool(bad.any()), f"{what}: {int(bad.sum())} non-finite entries"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case_id, family, scheduler", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_loss_is_finite_and_differentiable(case_id, family, scheduler, target, data):
    fm = _matcher(family, scheduler, target, data)
    data.model.zero_grad()
    loss = fm.loss(data.model, data.x1, cond=data.cond, batch=data.batch,
                   generator=torch.Generator().manual_seed(2))
    assert loss.dim() == 0 and bool(torch.isfinite(loss))
    loss.backward()
    grads = [p.grad for p in data.model.parameters() if p.grad is not None]
    assert grads, "no parameter received a gradient"
    for g in grads:
        _assert_finite(g, "gradient")
    assert any(bool(g.abs().sum() > 0) for g in grads)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case_id, family, scheduler", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_sampling_is_finite_and_shaped_like_the_data(case_id, family, scheduler, target, sampler,
                                                      data):
    fm = _matcher(family, scheduler, target, data)
    field = fm.velocity(data.model)
    g = torch.Generator().manual_seed(3)
    x0 = fm.source.sample(data.x1, cond=data.cond, batch=data.batch, generator=g)
    with torch.no_grad():
        if sampler == "sde":
            x = sde_sample(field, x0, path=fm.path, steps=STEPS, cond=data.cond, batch=data.batch,
                           center_noise=data.batch is not None, generator=g)
        else:
            x = odeint(field, x0, method=sampler, steps=STEPS, atol=1e-3, rtol=1e-3,
                       cond=data.cond, batch=data.batch).x
    assert x.shape == data.x1.shape and x.dtype == data.x1.dtype
    _assert_finite(x, f"{sampler} samples")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case_id, family, scheduler", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_velocity_field_is_finite_at_both_ends(case_id, family, scheduler, target, data):
    fm = _matcher(family, scheduler, target, data)
    field = fm.velocity(data.model)
    n = graphs.num_graphs(data.batch, data.x1.shape[0]) if data.batch is not None else data.x1.shape[0]
    x = torch.randn(data.x1.shape, generator=torch.Generator().manual_seed(4))
    for end in (0.0, 1.0):
        with torch.no_grad():
            v = field(x, torch.full((n,), end), cond=data.cond, batch=data.batch)
        assert v.shape == x.shape
        _assert_finite(v, f"velocity at t={end}")


CONVERSIONS = ["velocity_to_x1", "velocity_to_x0", "velocity_to_score", "x1_to_velocity",
               "x0_to_velocity", "score_to_velocity", "x1_to_x0", "x0_to_x1"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case_id, family, scheduler", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_every_conversion_is_finite_at_both_ends_with_finite_gradients(case_id, family, scheduler,
                                                                        dtype):
    path = make_path(family, scheduler)
    assert isinstance(path, ProbPath)
    g = torch.Generator().manual_seed(5)
    for end in (0.0, 1.0):
        a = torch.randn(4, 2, generator=g, dtype=dtype).requires_grad_(True)
        x = torch.randn(4, 2, generator=g, dtype=dtype)
        t = torch.full((4,), end, dtype=dtype)
        for name in CONVERSIONS:
            out = getattr(path, name)(a, x, t)
            _assert_finite(out.detach(), f"{name} at t={end}")
            (grad,) = torch.autograd.grad(out.sum(), a)
            _assert_finite(grad, f"gradient of {name} at t={end}")
        c = path.coefficients(t, x)
        for field_name in ("alpha", "sigma", "d_alpha", "d_sigma"):
            _assert_finite(torch.as_tensor(getattr(c, field_name)), f"{field_name} at t={end}")


ROUND_TRIPS = [("x1_to_velocity", "velocity_to_x1"), ("x0_to_velocity", "velocity_to_x0"),
               ("score_to_velocity", "velocity_to_score"), ("x1_to_x0", "x0_to_x1")]


@pytest.mark.parametrize("there, back", ROUND_TRIPS, ids=[f"{a}|{b}" for a, b in ROUND_TRIPS])
@pytest.mark.parametrize("case_id, family, scheduler", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_conversions_invert_each_other_away_from_the_ends(case_id, family, scheduler, there, back):
    path = make_path(family, scheduler)
    g = torch.Generator().manual_seed(6)
    a = torch.randn(32, 3, generator=g, dtype=torch.float64)
    x = torch.randn(32, 3, generator=g, dtype=torch.float64)
    t = torch.linspace(0.05, 0.95, 32, dtype=torch.float64)
    torch.testing.assert_close(getattr(path, back)(getattr(path, there)(a, x, t), x, t), a)
    torch.testing.assert_close(getattr(path, there)(getattr(path, back)(a, x, t), x, t), a)


@pytest.mark.parametrize("case_id, family, scheduler", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_sample_accepts_the_path_interface_keywords(case_id, family, scheduler):
    path = make_path(family, scheduler)
    x0, x1 = torch.randn(5, 2), torch.randn(5, 2)
    t = torch.rand(5, generator=torch.Generator().manual_seed(7))
    s = path.sample(x0, x1, t, validate=True, generator=torch.Generator().manual_seed(8))
    again = path.sample(x0, x1, t, validate=False, generator=torch.Generator().manual_seed(8))
    assert s.x_t.shape == x1.shape and s.u_t.shape == x1.shape
    torch.testing.assert_close(s.x_t, again.x_t)  # the generator fixes any extra noise
    ends = path.sample(x0, x1, torch.ones(5))
    torch.testing.assert_close(ends.x_t, x1)  # every path reaches the data at t = 1


@pytest.mark.parametrize("method", list(SOLVERS))
def test_solver_interface_and_exact_nfe(method):
    kind = SOLVERS[method]
    assert isinstance(kind.order, int) and kind.order >= 1
    assert isinstance(kind.evals, int) and kind.evals >= 1
    calls = [0]

    def f(x, t, *, cond=None, batch=None):
        calls[0] += 1
        return -x * (1 + t)[:, None]

    sol = odeint(f, torch.ones(3, 2, dtype=torch.float64), method=method, steps=5, atol=1e-6, rtol=1e-6)
    assert sol.nfe == calls[0]
    if kind.adaptive:  # one evaluation to start, then evals per attempted step
        assert (sol.nfe - 1) % kind.evals == 0 and len(sol.times) >= 2
    else:
        assert sol.nfe == 5 * kind.evals and len(sol.times) == 6


def _sources(like: Tensor) -> dict[str, Source]:
    data = 2.0 * torch.randn(200, like.shape[1], generator=torch.Generator().manual_seed(9))
    return {
        "gaussian": GaussianSource(),
        "gaussian shifted": GaussianSource(scale=0.5, mean=lambda cond: cond),
        "norm aligned": NormAlignedGaussianSource.fit(data),
        "pruned": DirectionalPruning.fit(data),
        "function": as_source(lambda like, *, cond=None, batch=None, generator=None:
                              torch.zeros_like(like)),
    }


@pytest.mark.parametrize("name", list(_sources(torch.zeros(1, 3))))
def test_every_source_follows_the_interface(name):
    like = torch.zeros(7, 3, dtype=torch.float64)
    cond = torch.full((7, 3), 4.0, dtype=torch.float64)
    src = _sources(like)[name]
    assert isinstance(src, Source)
    x0 = src.sample(like, cond=cond, batch=None, generator=torch.Generator().manual_seed(10))
    assert x0.shape == like.shape and x0.dtype == like.dtype
    _assert_finite(x0, name)
    # the matcher hands the source the batch's conditions
    fm = FlowMatcher(source=src)
    s = fm.training_sample(torch.randn(7, 3, dtype=torch.float64), cond=cond,
                           generator=torch.Generator().manual_seed(10))
    torch.testing.assert_close(s.path.x0, x0)

"""The schedule change is exact: same end samples, same marginals, consistent derivatives."""

from __future__ import annotations

import pytest
import torch
from gaussian_flow import GaussianTargetVelocity, rotated_cov

from sciflow.paths import CondOTScheduler, CosineScheduler, PolynomialScheduler, VPScheduler
from sciflow.reparam import ScheduleTransformedVelocity, schedule_change, to_vp
from sciflow.solvers import odeint


class _SmoothNet(torch.nn.Module):
    """A random network with a smooth dependence on t (sinusoidal embeddings make RK4 need many steps)."""

    def __init__(self) -> None:
        super().__init__()
        self.f = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))

    def forward(self, x, t, *, cond=None, batch=None):
        tt = t if batch is None else t[batch]
        return self.f(torch.cat([x, tt[:, None].to(x.dtype)], dim=1))


@pytest.mark.parametrize("target", [CosineScheduler(), PolynomialScheduler(exponent=2.0)])
@pytest.mark.parametrize("source", [CondOTScheduler(), CosineScheduler()])
def test_same_snr_and_scale(source, target):
    r = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)
    ts = schedule_change(r, source=source, target=target)
    old, new = source(ts.t), target(r)
    torch.testing.assert_close(new.alpha, ts.scale * old.alpha, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(new.sigma, ts.scale * old.sigma, rtol=1e-9, atol=1e-12)


def test_derivatives_match_finite_differences():
    src, tgt = CondOTScheduler(), CosineScheduler()
    r = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    ts = schedule_change(r, source=src, target=tgt)
    up, down = schedule_change(r + h, source=src, target=tgt), schedule_change(r - h, source=src, target=tgt)
    torch.testing.assert_close(ts.dt_dr, (up.t - down.t) / (2 * h), rtol=1e-6, atol=1e-8)
    dlogc = (up.scale.log() - down.scale.log()) / (2 * h)
    torch.testing.assert_close(ts.dlogc_dr, dlogc, rtol=1e-6, atol=1e-8)


def test_vp_ode_reproduces_linear_end_samples_exact_field():
    d = 3
    model = GaussianTargetVelocity(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), rotated_cov(d))
    x0 = torch.randn(64, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = odeint(model, x0, method="rk4", steps=200).x
    out = odeint(to_vp(model), x0, method="rk4", steps=200).x
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)


def test_conversion_exact_for_any_network_and_graph_batches():
    torch.manual_seed(0)
    net = _SmoothNet().double()
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    x0 = torch.randn(9, 2, dtype=torch.float64)
    with torch.no_grad():
        ref = odeint(net, x0, method="rk4", steps=200, batch=batch).x
        out = odeint(ScheduleTransformedVelocity(net), x0, method="rk4", steps=200, batch=batch).x
    torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-7)


def test_general_source_by_bisection_is_exact():
    # a cosine-trained model moved to the linear schedule: bisection path, then back is identity
    model = GaussianTargetVelocity(torch.tensor([0.5, 1.0], dtype=torch.float64), rotated_cov(2))
    x0 = torch.randn(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    there = ScheduleTransformedVelocity(model, target=PolynomialScheduler(exponent=1.5))
    back = ScheduleTransformedVelocity(there, source=PolynomialScheduler(exponent=1.5),
                                       target=CondOTScheduler())
    ref = odeint(model, x0, method="rk4", steps=40).x
    out = odeint(back, x0, method="rk4", steps=40).x
    torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-7)


def test_fewer_steps_change_with_schedule_but_endpoints_agree():
    # the point of the change: a different time grid for fixed-step solvers (results differ at 2 steps)
    model = GaussianTargetVelocity(torch.tensor([3.0, 0.0], dtype=torch.float64), rotated_cov(2))
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    a = odeint(model, x0, method="euler", steps=2).x
    b = odeint(to_vp(model), x0, method="euler", steps=2).x
    assert not torch.allclose(a, b)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="r must lie in"):
        schedule_change(torch.tensor([1.5]), source=CondOTScheduler(), target=VPScheduler())
    with pytest.raises(ValueError, match="1-D floating-point"):
        schedule_change(torch.tensor([[0.5]]), source=CondOTScheduler(), target=VPScheduler())
    with pytest.raises(TypeError, match="velocity field"):
        ScheduleTransformedVelocity(3)

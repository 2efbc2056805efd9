"""Lorenz 1963: fixed points, RK4's fourth order, batching, argument checks."""

import math

import pytest
import torch

from sciflow.domains.climate.lorenz import Lorenz63, lorenz_ensemble


def test_fixed_points_have_zero_tendency() -> None:
    m = Lorenz63()
    c = math.sqrt(m.beta * (m.rho - 1))
    points = torch.tensor([[0.0, 0.0, 0.0], [c, c, m.rho - 1], [-c, -c, m.rho - 1]],
                          dtype=torch.float64)
    assert torch.allclose(m.tendency(points), torch.zeros(3, 3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(m.step(points), points, atol=1e-12)


def test_rk4_is_fourth_order() -> None:
    x0 = torch.tensor([[1.0, 1.0, 20.0]], dtype=torch.float64)
    exact = Lorenz63(dt=1e-4).run(x0, steps=5000)[-1]  # t = 0.5
    errors = []
    for dt in (0.01, 0.005):
        got = Lorenz63(dt=dt).run(x0, steps=round(0.5 / dt))[-1]
        errors.append((got - exact).norm().item())
    order = math.log2(errors[0] / errors[1])
    assert 3.6 < order < 4.4


def test_leading_dimensions_are_independent_members() -> None:
    m = Lorenz63()
    x = lorenz_ensemble(6, generator=torch.Generator().manual_seed(0)).view(2, 3, 3)
    batched = m.run(x, steps=50, every=10)
    assert batched.shape == (5, 2, 3, 3)
    alone = m.run(x[1, 2], steps=50, every=10)
    assert torch.equal(batched[:, 1, 2], alone)


def test_state_rounding_hook_and_argument_checks() -> None:
    m = Lorenz63()
    x = lorenz_ensemble(2, generator=torch.Generator().manual_seed(1))
    calls = []
    m.run(x, steps=3, state_rounding=lambda s: calls.append(1) or s)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="must end in"):
        m.run(torch.zeros(2, 4), steps=1)
    with pytest.raises(ValueError, match="every must be"):
        m.run(x, steps=1, every=0)
    with pytest.raises(ValueError, match="dt must be positive"):
        Lorenz63(dt=0.0)

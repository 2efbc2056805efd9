"""Shallow water over a ridge: rest, mass conservation, walls, batching, settings."""

import math

import pytest
import torch

from sciflow.domains.climate.shallow_water import ShallowWater


def small(**kw) -> ShallowWater:  # noqa: ANN003
    return ShallowWater(nx=16, lx=640e3, ly=320e3, ridge_width=60e3, **kw)


def test_default_grid_and_step_match_the_study() -> None:
    m = ShallowWater()
    assert (m.nx, m.ny, m.dx) == (100, 50, 20e3)
    assert m.dt == pytest.approx(282.84, abs=0.01)
    assert m.coriolis == pytest.approx(1.031e-4, rel=1e-3)


def test_rest_stays_at_rest_without_wind() -> None:
    m = small(wind_stress=0.0)
    s = m.rest_state(2)
    end, _ = m.run(s, steps=20, every=20)
    for t in (end.u, end.v, end.eta):
        assert float(t.abs().max()) == 0.0


def test_wind_spins_up_a_current_conserving_mass_with_closed_walls() -> None:
    m = small()
    s = m.rest_state(noise=1e-3, generator=torch.Generator().manual_seed(0))
    fields = m.fields()
    end, rec = m.run(s, steps=300, every=100, fields=fields)
    assert rec.u.shape == (3, m.ny, m.nx) and rec.v.shape == (3, m.ny + 1, m.nx)
    assert float(end.u.mean()) > 0  # eastward wind, eastward current
    assert float(end.v[..., 0, :].abs().max()) == 0.0 and float(end.v[..., -1, :].abs().max()) == 0.0
    assert abs(float(end.eta.sum() - s.eta.sum())) < 1e-9 * end.eta.numel()
    energy = m.energy(end, fields)
    assert math.isfinite(float(energy)) and float(energy) > float(m.energy(s, fields))


def test_leading_dimensions_are_independent() -> None:
    m = small()
    g = torch.Generator().manual_seed(1)
    s = m.rest_state(3, noise=1e-2, generator=g)
    end, _ = m.run(s, steps=20, every=20)
    single = s.map(lambda t: t[1])
    end1, _ = m.run(single, steps=20, every=20)
    assert torch.allclose(end.eta[1], end1.eta, rtol=0, atol=1e-12)


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="whole number"):
        ShallowWater(nx=33)
    with pytest.raises(ValueError, match="ridge_height"):
        ShallowWater(ridge_height=600.0)
    with pytest.raises(ValueError, match="grid"):
        small().run(ShallowWater().rest_state(), steps=1, every=1)

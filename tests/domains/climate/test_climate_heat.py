"""Soil column: the discrete equation, boundary conditions, and low-precision stagnation."""

import pytest
import torch

from sciflow.domains.climate.heat import SoilColumn
from sciflow.precision import FLOAT16, Precision, emulate, emulate_sweep, sbits


def test_settings_of_the_study() -> None:
    col = SoilColumn()
    assert col.levels == 60 and col.courant == pytest.approx(1.26e-3)
    assert col.steps_per_year() == 365 * 48


def test_step_is_the_centred_difference_with_boundaries() -> None:
    col = SoilColumn(depth=5.0)
    t = torch.tensor([[1.0, 2.0, 4.0, 7.0, 11.0]], dtype=torch.float64)
    c = col.courant
    expected = t.clone()
    padded = torch.cat([torch.tensor([[col.surface]], dtype=torch.float64), t, t[:, -1:]], dim=1)
    expected = t + c * (padded[:, :-2] - 2 * t + padded[:, 2:])
    assert torch.allclose(col.step(t), expected)


def test_surface_temperature_is_a_steady_state_and_heat_enters_from_the_top() -> None:
    col = SoilColumn(depth=10.0)
    warm = torch.full((1, col.levels), col.surface, dtype=torch.float64)
    assert torch.equal(col.run(warm, steps=100)[-1], warm)
    cold = col.initial_state(1)
    out = col.run(cold, steps=2000, every=1000)
    assert out.shape == (2, 1, col.levels)
    heat = (out[:, 0] - col.initial).sum(dim=-1)
    assert 0 < heat[0] < heat[1]  # monotone warming
    assert bool((out[-1, 0, :-1] >= out[-1, 0, 1:]).all())  # warmer near the surface


def test_float16_round_to_nearest_stagnates_and_stochastic_rounding_warms() -> None:
    col = SoilColumn(depth=10.0)
    start = col.initial_state(8)
    with emulate(FLOAT16):
        rn = col.run(start, steps=400)[-1]
    with emulate(FLOAT16, rounding="stochastic", generator=torch.Generator().manual_seed(0)):
        sr = col.run(start, steps=400)[-1]
    ref = col.run(start, steps=400)[-1]
    assert torch.unique(rn).numel() == 1  # every level stuck at float16(273.15) = 273.25
    assert (sr[:, 0].mean() - 273.0) > 0.5 * (ref[0, 0] - col.initial)


def test_sweep_batch_equals_each_precision_run_alone() -> None:
    col = SoilColumn(depth=8.0)
    arms = [Precision(sbits(8)), Precision(FLOAT16), Precision(sbits(23))]
    with emulate_sweep(arms):
        batched = col.run(col.initial_state(len(arms)), steps=60)[-1]
    for k, arm in enumerate(arms):
        with emulate(arm.fmt):
            alone = col.run(col.initial_state(), steps=60)[-1]
        assert torch.equal(batched[k], alone), arm.name


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="unstable"):
        SoilColumn(dt=1e6)
    with pytest.raises(ValueError, match="levels"):
        SoilColumn().run(torch.zeros(1, 7), steps=1)

"""FlowChef steering of the remote-sensing generator: cloud removal as an inverse problem.

A date is withheld from the model's condition and its clear pixels become a masked measurement
(:func:`make_measurement`); steering (``steer=eta``) must pull the samples onto it (exactly at
eta = 1/2 on the linear path), more with a larger step, without ever differentiating the network,
and must leave the plain sampler untouched when off.
"""

from __future__ import annotations

import math

import pytest
import torch

from sciflow.datasets.sentinel import generate_cubes
from sciflow.domains.remote_sensing import (
    apply_to_cube,
    check_steer,
    make_measurement,
    predict_series,
    sample_states,
)
from sciflow.domains.remote_sensing.tasks import decode_state
from sciflow.matcher import FlowMatcher
from sciflow.solvers import odeint


@pytest.fixture(scope="module")
def problem(masked_problem):
    return masked_problem


def _rms(x, y, mask):
    return float(((x - y) ** 2 * mask).sum() / mask.sum()) ** 0.5


def test_measurement_is_the_observed_reflectance_in_the_state_layout(problem):
    model, series, batch, observed = problem
    meas = make_measurement(model, series, observed)
    c = len(model.config.bands)
    assert meas.y.shape == meas.mask.shape == batch.x1.shape
    assert meas.mask[:, :, c:].abs().sum() == 0 and meas.y[:, :, c:].abs().sum() == 0
    assert torch.equal(meas.mask[:, :, :c].bool(), observed[:, :, None].expand(-1, -1, c, -1, -1))
    refl, _ = decode_state(meas.y, model.standardizer, c)
    keep = observed[:, :, None].expand_as(refl)
    torch.testing.assert_close(refl[keep], series.reflectance[keep])
    # the default measures every clear pixel
    assert torch.equal(make_measurement(model, series).mask[:, :, 0].bool(), series.clear)


def test_measurement_rejects_pixels_that_are_not_clear_observations(problem):
    model, series, _, observed = problem
    with pytest.raises(ValueError, match="not clear"):
        make_measurement(model, series, ~series.clear)
    with pytest.raises(ValueError, match="shape"):
        make_measurement(model, series, observed[:, :2])
    with pytest.raises(TypeError, match="bool"):
        make_measurement(model, series, observed.float())


def test_steering_off_is_the_plain_ode_bit_for_bit(problem):
    model, _, batch, _ = problem
    field = FlowMatcher(target="x1").velocity(model.net)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        expected = torch.stack([odeint(field, torch.randn(batch.x1.shape, generator=g), steps=3,
                                       cond=batch.cond).x for _ in range(2)])
    got = sample_states(model, batch, samples=2, steps=3, seed=3, steer=None)
    assert torch.equal(got, expected)


def test_steering_pulls_samples_onto_the_observed_pixels(problem):
    model, series, batch, observed = problem
    meas = make_measurement(model, series, observed)

    def no_autograd(module, args):
        assert not torch.is_grad_enabled(), "the network was called with autograd on"

    handle = model.net.register_forward_pre_hook(no_autograd)
    try:
        errors = [_rms(sample_states(model, batch, samples=1, steps=4, steer=eta,
                                     measurement=None if eta is None else meas)[0],
                       meas.y, meas.mask) for eta in (None, 0.1, 0.25, 0.5)]
    finally:
        handle.remove()
    assert errors[0] > 0.05
    assert errors[1] < errors[0] and errors[2] < errors[1], errors
    # eta = 1/2: with v frozen each update is the exact projection of x1_hat onto y, and the last
    # Euler step lands on that x1_hat, so the sample matches the measurement to rounding
    assert errors[3] < 1e-4 * errors[0], errors
    assert all(p.grad is None for p in model.net.parameters())


def test_predict_series_steers_pixels_withheld_from_the_condition(problem):
    model, series, _, observed = problem
    kw = dict(samples=2, steps=4, seed=1, withhold=observed)
    plain = predict_series(model, series, "reconstruction", **kw)
    steered = predict_series(model, series, "reconstruction", steer=0.5, measured=observed, **kw)
    for pred in (plain, steered):  # withheld pixels are predicted, not given or pasted back
        assert not bool((pred.given & observed).any()) and bool(pred.target[observed].all())
    keep = observed[:, :, None].expand_as(series.reflectance).float()
    before = _rms(plain.reflectance, series.reflectance, keep)
    assert before > 1e-3
    assert _rms(steered.reflectance, series.reflectance, keep) < 1e-3 * before
    # withholding nothing is the default sampler, bit for bit
    none = torch.zeros_like(observed)
    assert torch.equal(predict_series(model, series, "reconstruction", samples=1, steps=2,
                                      withhold=none).samples,
                       predict_series(model, series, "reconstruction", samples=1, steps=2).samples)


@pytest.mark.parametrize("eta", [-0.1, float("nan"), float("inf"), 0.0, 1.0, 1.5])
def test_bad_step_size_is_a_clear_error(problem, tiny_data, eta):
    model, series, _, _ = problem
    with pytest.raises(ValueError, match=r"steer .*\(0, 1\)"):
        check_steer(eta)
    with pytest.raises(ValueError, match="steer"):
        predict_series(model, series, "cloud_removal", samples=1, steps=1, steer=eta)
    cube = generate_cubes(tiny_data, 1, seed=3)[0].chunk({"y": 4, "x": 4})  # lazy: fails up front
    with pytest.raises(ValueError, match="steer"):
        apply_to_cube(model, cube, "cloud_removal", samples=1, steps=1, steer=eta)


def test_steering_misuse_is_a_clear_error(problem):
    model, series, batch, observed = problem
    with pytest.raises(TypeError, match="steer"):
        check_steer(True)
    assert check_steer(None) is None and math.isclose(check_steer(0.5), 0.5)
    with pytest.raises(ValueError, match="Euler"):
        predict_series(model, series, "reconstruction", solver="rk4", steer=0.5)
    with pytest.raises(ValueError, match="only used when steering"):
        predict_series(model, series, "reconstruction", measured=observed)
    with pytest.raises(ValueError, match="not clear"):
        predict_series(model, series, "reconstruction", steer=0.5, measured=~series.clear)
    with pytest.raises(ValueError, match="needs a measurement"):
        sample_states(model, batch, samples=1, steps=1, steer=0.5)

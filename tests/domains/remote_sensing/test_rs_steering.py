"""FlowChef steering of the remote-sensing generator: cloud removal as an inverse problem.

A date is hidden from the model's condition and its clear pixels become a masked measurement;
steering must pull the samples onto the measurement (exactly at eta = 1/2 on the linear path),
more with a larger step, without ever differentiating the network.
"""

from __future__ import annotations

import pytest
import torch

from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
from sciflow.domains.remote_sensing import (
    RSModelSpec,
    TrainOptions,
    series_from_cube,
    stack_series,
    train_rs,
)
from sciflow.domains.remote_sensing.data import TaskOptions, make_task
from sciflow.domains.remote_sensing.pipeline import MATCHER
from sciflow.solvers import odeint
from sciflow.steering import flowchef, masked_measurement_loss

TINY = RSModelSpec(frames=4, tile=8, patch_size=4, dim=16, depth=1, heads=2, pixel_head=4)
DATA = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5)


@pytest.fixture(scope="module")
def problem():
    model, _ = train_rs(generate_cubes(DATA, 4, seed=0), TINY,
                        options=TrainOptions(steps=4, batch_size=2, progress=False, log_every=2))
    series = stack_series([series_from_cube(c) for c in generate_cubes(DATA, 3, seed=7)])
    b, t, c = series.shape[:3]
    # per series the date with the most pixels both clear and cloudy (the larger of the two minima)
    clear = series.clear.float().sum((2, 3))
    both = torch.minimum(clear, series.clear[0, 0].numel() - clear)
    day = both.argmax(1)
    hide = torch.zeros(b, t, dtype=torch.bool)
    hide[torch.arange(b), day] = True
    observed = series.clear & hide[:, :, None, None]
    assert bool(observed.flatten(1).any(1).all()), "every series needs observed pixels"
    batch = make_task(series, "reconstruction", standardizer=model.standardizer,
                      n_classes=len(TINY.classes), use_sar_channels=bool(TINY.sar),
                      options=TaskOptions(drop_dates=0, use_sar=False), hide_dates=hide,
                      prior=TINY.prior)
    mask = torch.zeros_like(batch.x1)
    mask[:, :, :c] = observed[:, :, None].float()
    y = torch.zeros_like(batch.x1)
    y[:, :, :c] = model.standardizer.bands(series.reflectance)
    return model, batch, y * mask, mask


def _guarded(field):
    def call(x, t, *, cond=None, batch=None):
        assert not torch.is_grad_enabled(), "the network was called with autograd on"
        return field(x, t, cond=cond, batch=batch)

    return call


def test_steering_pulls_samples_onto_the_observed_pixels(problem):
    model, batch, y, mask = problem
    field = MATCHER.velocity(model.net)
    loss = masked_measurement_loss(y, mask)
    x0 = torch.randn(batch.x1.shape, generator=torch.Generator().manual_seed(0))
    steps = 4
    with torch.no_grad():
        plain = odeint(field, x0, steps=steps, cond=batch.cond).x

    def error(x):
        return float(((x - y) ** 2 * mask).sum() / mask.sum()) ** 0.5

    errors = [error(plain)]
    for eta in (0.1, 0.25, 0.5):
        res = flowchef(_guarded(field), x0, loss=loss, steps=steps, step_size=eta, cond=batch.cond)
        assert res.nfe == steps and res.x.shape == x0.shape and not res.x.requires_grad
        errors.append(error(res.x))
    assert errors[0] > 0.05
    assert errors[1] < errors[0] and errors[2] < errors[1], errors
    # eta = 1/2: with v frozen each update is the exact projection of x1_hat onto y, and the last
    # Euler step lands on that x1_hat, so the sample matches the measurement to rounding
    assert errors[3] < 1e-4 * errors[0], errors
    assert all(p.grad is None for p in model.net.parameters())

"""FLAIR cloud removal on the remote-sensing generator (``sampling.flair_states``).

A date is withheld from the model's condition and its clear pixels form the measurement; FLAIR
must return estimates that meet it exactly (hard data consistency through the mask operator),
spend one network evaluation per step without autograd, differ between members only through
their noise, and refuse bad inputs by name.
"""

from __future__ import annotations

import pytest
import torch

from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
from sciflow.domains.remote_sensing import (
    Config,
    make_measurement,
    series_from_cube,
    stack_series,
    train,
)
from sciflow.domains.remote_sensing.sampling import flair_states, sample_states
from sciflow.domains.remote_sensing.tasks import TaskOptions, make_task
from sciflow.errors import InputError
from sciflow.flair import FLAIRConfig

TINY = Config(frames=4, tile=8, patch_size=4, dim=16, depth=1, heads=2, pixel_head=4,
              batch_size=2)
DATA = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5)


@pytest.fixture(scope="module")
def problem():
    model = train(generate_cubes(DATA, 4, seed=0),
                  TINY.replace(train={"steps": 4, "progress": False, "log_every": 2}))
    series = stack_series([series_from_cube(c) for c in generate_cubes(DATA, 3, seed=7)])
    b, t = series.shape[:2]
    clear = series.clear.float().sum((2, 3))
    both = torch.minimum(clear, series.clear[0, 0].numel() - clear)
    hide = torch.zeros(b, t, dtype=torch.bool)
    hide[torch.arange(b), both.argmax(1)] = True
    observed = series.clear & hide[:, :, None, None]
    assert bool(observed.flatten(1).any(1).all()), "every series needs observed pixels"
    batch = make_task(series, "reconstruction", standardizer=model.standardizer,
                      n_classes=len(TINY.classes), use_sar_channels=bool(TINY.sar),
                      options=TaskOptions(drop_dates=0, use_sar=False), hide_dates=hide,
                      prior=TINY.prior)
    return model, batch, make_measurement(model, series, observed)


def test_flair_meets_the_measurement_exactly_and_the_plain_sampler_does_not(problem):
    model, batch, meas = problem
    calls = []

    def count(module, args):
        assert not torch.is_grad_enabled(), "the network was called with autograd on"
        calls.append(1)

    handle = model.net.register_forward_pre_hook(count)
    try:
        est = flair_states(model, batch, meas, samples=2, steps=5, seed=0)
    finally:
        handle.remove()
    assert est.shape == (2, *batch.x1.shape)
    assert len(calls) == 2 * 5  # one network evaluation per step and member
    on = meas.mask.bool()
    assert torch.equal(est[:, on], meas.y[on].expand(2, -1))
    plain = sample_states(model, batch, samples=1, steps=5)[0]
    assert float((plain[on] - meas.y[on]).abs().max()) > 1e-2
    # members differ (their noise) but a seed repeats them bit for bit
    assert not torch.equal(est[0], est[1])
    assert torch.equal(est, flair_states(model, batch, meas, samples=2, steps=5, seed=0))
    assert all(p.grad is None for p in model.net.parameters())


def test_flair_fills_the_unmeasured_pixels_from_the_prior(problem):
    model, batch, meas = problem
    est = flair_states(model, batch, meas, samples=1, steps=4,
                       config=FLAIRConfig(step_size=0.5))[0]
    off = ~meas.mask.bool()
    assert torch.isfinite(est).all()
    # the starting point A^+ y is zero there: the prior's pull moved every series
    assert bool((est[off].abs() > 0).any())


def test_flair_states_refuses_bad_inputs_by_name(problem):
    model, batch, meas = problem
    with pytest.raises(InputError, match="samples"):
        flair_states(model, batch, meas, samples=0, steps=2)
    with pytest.raises(InputError, match="steps"):
        flair_states(model, batch, meas, samples=1, steps=0)
    with pytest.raises(InputError, match="Measurement"):
        flair_states(model, batch, meas.y, samples=1, steps=2)
    with pytest.raises(InputError, match="FLAIRConfig"):
        flair_states(model, batch, meas, samples=1, steps=2, config={"steps": 2})
    cut = type(meas)(meas.y[:1], meas.mask[:1])
    with pytest.raises(InputError, match="shape"):
        flair_states(model, batch, cut, samples=1, steps=2)

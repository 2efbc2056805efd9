"""FLAIR cloud removal on the remote-sensing generator (``sampling.flair_states``).

A date is withheld from the model's condition and its clear pixels form the measurement; FLAIR
must return estimates that meet it exactly (hard data consistency through the mask operator),
spend one network evaluation per step without autograd, differ between members only through
their noise, and refuse bad inputs by name.
"""

from __future__ import annotations

import pytest
import torch

from sciflow.domains.remote_sensing import (
    make_measurement,
)
from sciflow.domains.remote_sensing.sampling import flair_states, sample_states
from sciflow.errors import InputError
from sciflow.flair import FLAIRConfig


@pytest.fixture(scope="module")
def problem(masked_problem):
    model, series, batch, observed = masked_problem
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

"""FLAIR on a Gaussian prior (closed-form posterior and closed-form model error), exact data
consistency on a 2-D inpainting, a frozen network, and clear errors."""

from __future__ import annotations

import pytest
import torch
from gaussian_flow import GaussianTargetVelocity, rotated_cov

from sciflow.flair import FLAIRConfig, RegularisationWeight, calibrate, flair
from sciflow.operators import Blur, Downsample, Mask, MatrixOperator
from sciflow.sources import GaussianSource


def gaussian_problem(d: int = 4, m: int = 2):
    """Prior N(mean, S) as its exact flow, y = A x_true, and the posterior mean and covariance."""
    mean = torch.linspace(-1.0, 2.0, d, dtype=torch.float64)
    cov = 2 * rotated_cov(d)
    g = torch.Generator().manual_seed(5)
    a = torch.randn(m, d, generator=g, dtype=torch.float64)
    x_true = mean + torch.linalg.cholesky(cov) @ torch.randn(d, generator=g, dtype=torch.float64)
    y = a @ x_true
    gain = cov @ a.T @ torch.linalg.inv(a @ cov @ a.T)
    return GaussianTargetVelocity(mean, cov), a, y, mean + gain @ (y - a @ mean), cov - gain @ a @ cov


def test_flair_recovers_the_gaussian_posterior_mean_and_meets_the_measurement():
    model, a, y1, post_mean, post_cov = gaussian_problem()
    n = 2048
    like = torch.zeros(n, a.shape[1], dtype=torch.float64)
    y = y1.expand(n, -1).clone()
    op = MatrixOperator(a)
    start = op.project(like, y)
    result = flair(model, y, op, like=like, config=FLAIRConfig(steps=50),
                   generator=torch.Generator().manual_seed(0))
    assert result.nfe == 50 and len(result.times) == 50 and result.times[-1] == 0.8
    assert float(result.residual.max()) < 1e-10
    error = float((result.x.mean(0) - post_mean).norm())
    standard_error = float((result.x.var(0).sum() / n).sqrt())  # of the mean of n estimates
    assert error < 4 * standard_error
    assert error < 0.1 * float((start[0] - post_mean).norm())
    # the trajectory adjustment keeps the posterior's spread better than fresh noise each step
    fresh = flair(model, y, op, like=like, config=FLAIRConfig(steps=50, trajectory=lambda t: 0.0),
                  generator=torch.Generator().manual_seed(0))
    spread = post_cov.diagonal().sqrt()
    assert (result.x.std(0) - spread).abs().sum() < (fresh.x.std(0) - spread).abs().sum()


@pytest.mark.parametrize("kind", ["mask", "downsample", "blur"])
def test_every_estimate_is_consistent_with_the_observation(kind):
    torch.manual_seed(0)
    d = 16
    model = GaussianTargetVelocity(torch.zeros(d, dtype=torch.float64), rotated_cov(d))
    truth = torch.randn(6, d, dtype=torch.float64)
    if kind == "mask":
        op, shape = Mask(torch.arange(d) % 3 == 0), (d,)
    elif kind == "downsample":
        op, shape = Downsample(2), (1, 4, 4)
    else:
        kernel = torch.tensor([[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]], dtype=torch.float64)
        op, shape = Blur(kernel, rcond=0.0), (1, 4, 4)

    def field(x, t, *, cond=None, batch=None):  # the flat prior seen through the operator's shape
        return model(x.reshape(x.shape[0], d), t).reshape(x.shape)

    y = op.forward(truth.reshape(6, *shape))
    result = flair(field, y, op, like=torch.zeros(6, *shape, dtype=torch.float64),
                   config=FLAIRConfig(steps=10))
    assert float(result.residual.max()) <= 1e-9 * max(1.0, float(y.abs().max()))
    if kind == "mask":
        assert torch.equal(result.x[:, ::3], truth[:, ::3])  # observed entries met bit-exactly


def test_two_dimensional_inpainting_with_a_shifted_source_and_a_frozen_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.SiLU(), torch.nn.Linear(32, 2))
    calls = []

    def field(x, t, *, cond=None, batch=None):
        calls.append(torch.is_grad_enabled())
        return net(torch.cat([x, t[:, None]], dim=1))

    source = GaussianSource(scale=0.5, mean=lambda c: c)  # a conditional mean, as in the domains
    cond = torch.randn(8, 2)
    y = torch.tensor([[1.25, 0.0]]).expand(8, 2).clone()
    result = flair(field, y, Mask(torch.tensor([True, False])), like=torch.zeros(8, 2),
                   source=source, cond=cond, config=FLAIRConfig(steps=7))
    assert torch.equal(result.x[:, 0], torch.full((8,), 1.25))
    assert len(calls) == 7 and not any(calls)  # one evaluation a step, never with autograd
    assert all(p.grad is None for p in net.parameters())
    with torch.no_grad():  # FLAIR needs no autograd at all
        again = flair(field, y, Mask(torch.tensor([True, False])), like=torch.zeros(8, 2),
                      source=source, cond=cond, config=FLAIRConfig(steps=7),
                      generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(again.x).all()


def test_calibration_measures_the_models_error_at_each_time():
    model, *_ = gaussian_problem(d=3)
    mean, cov = model.mean, model.cov
    data = mean + torch.randn(20000, 3, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(1)) @ torch.linalg.cholesky(cov).T
    times = (0.1, 0.5, 0.9)
    weight = calibrate(model, data, times=times, generator=torch.Generator().manual_seed(2))
    eye = torch.eye(3, dtype=torch.float64)
    for t, measured in zip(times, weight.error):
        # the exact field's error is the conditional variance of u = x1 - x0 given x_t
        cross = t * cov - (1 - t) * eye
        c_t = t**2 * cov + (1 - t) ** 2 * eye
        expected = float(torch.trace(cov + eye - cross @ torch.linalg.solve(c_t, cross))) / 3
        assert abs(measured - expected) < 0.03 * expected
    assert abs(sum(weight.values) / 3 - 1.0) < 1e-12
    inverse = [1 / e for e in weight.error]
    assert max(weight.values) == weight.values[inverse.index(max(inverse))]
    assert weight(0.3) == pytest.approx(0.5 * (weight.values[0] + weight.values[1]))


def test_a_calibrated_weight_changes_the_result_where_steps_are_not_capped():
    model, a, y1, *_ = gaussian_problem()
    like = torch.zeros(64, a.shape[1], dtype=torch.float64)
    y, op = y1.expand(64, -1).clone(), MatrixOperator(a)
    low = RegularisationWeight(times=(0.0, 1.0), values=(0.0, 0.0))
    cfg = FLAIRConfig(steps=20, step_size=0.3, weight=low)
    unregularised = flair(model, y, op, like=like, config=cfg)
    assert torch.allclose(unregularised.x, op.project(like, y))  # weight 0: only the projection
    regularised = flair(model, y, op, like=like, config=FLAIRConfig(steps=20, step_size=0.3))
    assert not torch.allclose(regularised.x, unregularised.x)


def test_bad_inputs_raise_clear_errors():
    model, a, y1, *_ = gaussian_problem()
    like = torch.zeros(4, a.shape[1], dtype=torch.float64)
    with pytest.raises(ValueError, match="y has shape"):
        flair(model, torch.zeros(4, 3, dtype=torch.float64), MatrixOperator(a), like=like)
    with pytest.raises(ValueError, match="t_max must lie in"):
        FLAIRConfig(t_max=1.0)
    with pytest.raises(ValueError, match="steps must be an integer"):
        FLAIRConfig(steps=0)
    with pytest.raises(ValueError, match="times must increase"):
        RegularisationWeight(times=(0.5, 0.2), values=(1.0, 1.0))
    with pytest.raises(ValueError, match="init must be shaped like the unknowns"):
        flair(model, y1.expand(4, -1).clone(), MatrixOperator(a), like=like, init=torch.zeros(4))
    with pytest.raises(ValueError, match="trajectory"):
        flair(model, y1.expand(4, -1).clone(), MatrixOperator(a), like=like,
              config=FLAIRConfig(steps=3, trajectory=lambda t: 2.0))

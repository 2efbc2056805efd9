"""The latent forecaster: contract, parametrisations, windows, rollout and a short training run."""

import pytest
import torch

from sciflow.domains.feature_forecasting.model import (
    ForecasterSpec,
    LatentForecaster,
    sample_windows,
)
from sciflow.domains.feature_forecasting.sampling import rollout
from sciflow.domains.feature_forecasting.training import train_forecaster
from sciflow.paths import AffinePath


def _model(**kw):
    torch.manual_seed(0)
    spec = ForecasterSpec(latent_dim=3, patch_size=2, dim=16, depth=1, heads=2, max_context=4, **kw)
    return LatentForecaster(spec)


def _perturb(model):
    with torch.no_grad():  # leave the zero-initialised (identity) state of adaLN-Zero
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("length", [1, 2, 4])
def test_forecaster_follows_the_velocity_contract_for_every_window(length):
    m = _perturb(_model())
    x, ctx = torch.randn(2, 3, 4, 4), torch.randn(2, length, 3, 4, 4)
    v = m(x, torch.rand(2), cond=ctx)
    assert v.shape == x.shape and torch.isfinite(v).all()
    # a sample's output depends on its own context only
    ctx2 = ctx.clone()
    ctx2[1] += 1.0
    v2 = m(x, torch.tensor([0.3, 0.3]), cond=ctx2)
    v1 = m(x, torch.tensor([0.3, 0.3]), cond=ctx)
    assert torch.allclose(v1[0], v2[0], atol=1e-6) and not torch.allclose(v1[1], v2[1])


def test_residual_x1_forecaster_starts_as_persistence():
    m = _model(prediction="x1", residual=True)
    ctx = torch.randn(3, 2, 3, 4, 4)
    # the transformer's output layer starts at zero, so the prediction is the last frame
    assert torch.equal(m.predict(ctx), ctx[:, -1])


def test_x1_prediction_converts_to_the_linear_path_velocity():
    m = _perturb(_model(prediction="x1", residual=True))
    x, ctx, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 3, 4, 4), torch.tensor([0.2, 0.7])
    x1_hat = m(x, t, cond=ctx)
    expect = AffinePath().x1_to_velocity(x1_hat, x, t)
    assert torch.allclose(m.velocity(x, t, cond=ctx), expect)
    assert torch.allclose(expect, (x1_hat - x) / (1 - t)[:, None, None, None], atol=1e-6)


def test_bad_inputs_are_named():
    m = _model()
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="context holds 5 frames"):
        m(x, torch.rand(2), cond=torch.randn(2, 5, 3, 4, 4))
    with pytest.raises(TypeError, match="context latents"):
        m(x, torch.rand(2))
    with pytest.raises(ValueError, match=r"\(B, 3, h, w\)"):
        m(torch.randn(2, 4, 4, 4), torch.rand(2), cond=torch.randn(2, 1, 4, 4, 4))
    with pytest.raises(ValueError, match="residual"):
        ForecasterSpec(latent_dim=3, residual=True)


def test_sample_windows_are_consecutive_frames_and_their_successor():
    n, t = 5, 7
    lat = torch.arange(n * t, dtype=torch.float32).reshape(n, t, 1, 1, 1).expand(n, t, 2, 2, 2)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        b = sample_windows(lat, 8, min_context=1, max_context=4, generator=g)
        ids = b.context[:, :, 0, 0, 0]
        target = b.target[:, 0, 0, 0]
        assert 1 <= ids.shape[1] <= 4
        assert torch.equal(ids[:, 1:] - ids[:, :-1], torch.ones_like(ids[:, 1:]))
        assert torch.equal(target, ids[:, -1] + 1)
        assert bool(((ids[:, 0] // t) == (target // t)).all())  # one clip per window


def test_rollout_shapes_seeds_and_sliding_window():
    m = _perturb(_model(prediction="x1", residual=True)).eval()
    ctx = torch.randn(2, 3, 3, 4, 4)
    a = rollout(m, ctx, horizon=3, samples=4, steps=3, generator=torch.Generator().manual_seed(1))
    b = rollout(m, ctx, horizon=3, samples=4, steps=3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 4, 3, 3, 4, 4) and torch.equal(a, b)
    assert not torch.allclose(a[:, 0], a[:, 1])  # samples differ
    r = rollout(m, ctx, horizon=3, samples=4, objective="regression")
    assert r.shape == (2, 1, 3, 3, 4, 4)
    # the second step sees the window (ctx[1], ctx[2], first forecast)
    second = m.predict(torch.cat([ctx[:, 1:], r[:, 0, :1]], dim=1))
    assert torch.allclose(r[:, 0, 1], second, atol=1e-6)
    with pytest.raises(ValueError, match="horizon"):
        rollout(m, ctx, horizon=0)


@pytest.mark.parametrize("objective", ["regression", "flow"])
def test_short_training_reduces_the_loss(objective):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(24, 1, 3, 4, 4, generator=g)
    lat = torch.cat([base + 0.5 * s for s in range(5)], dim=1)  # every value drifts steadily
    spec = ForecasterSpec(latent_dim=3, patch_size=2, dim=16, depth=1, heads=2, max_context=2,
                          prediction="x1", residual=True)
    model, result = train_forecaster(lat, spec, objective=objective, steps=60, batch_size=16,
                                     lr=3e-3)
    first, last = result.loss_history[0][1], result.loss_history[-1][1]
    assert last < 0.8 * first
    assert not model.training and not any(p.requires_grad for p in model.parameters())

"""Norm-aligned sources match E||x1||; pruned sampling avoids data-sparse directions only."""

from __future__ import annotations

import pytest
import torch

from sciflow import graphs
from sciflow.matcher import FlowMatcher
from sciflow.nn.mlp import MLPVelocity
from sciflow.sources import (
    DirectionalPruning,
    FunctionSource,
    GaussianSource,
    NormAlignedGaussianSource,
    Source,
    as_source,
    chi_mean,
)


def test_chi_mean_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    for k in (1, 2, 7, 100):
        mc = torch.randn(200_000 // k + 1000, k, generator=g, dtype=torch.float64).norm(dim=1).mean()
        assert abs(float(chi_mean(k)) - float(mc)) < 0.01 * float(mc)
    assert abs(float(chi_mean(1)) - (2 / torch.pi) ** 0.5) < 1e-12


def test_norm_aligned_source_matches_expected_data_norm():
    g = torch.Generator().manual_seed(1)
    data = 3.0 * torch.randn(4000, 6, generator=g) + torch.tensor([5.0, 0, 0, 0, 0, 0])
    src = NormAlignedGaussianSource.fit(data)
    x0 = src.sample(torch.empty(40_000, 6), generator=g)
    want = float(data.norm(dim=1).mean())
    assert abs(float(x0.norm(dim=1).mean()) - want) < 0.01 * want
    loss = FlowMatcher(source=src).loss(MLPVelocity(dim=6, hidden=16, layers=1), data[:64], generator=g)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("center", [False, True])
def test_norm_aligned_source_on_graph_batches(center):
    g = torch.Generator().manual_seed(2)
    sizes = torch.randint(3, 9, (400,), generator=g)
    batch = torch.repeat_interleave(torch.arange(400), sizes)
    data = 2.5 * torch.randn(batch.numel(), 3, generator=g, dtype=torch.float64)
    if center:
        data = graphs.center(data, batch)
    src = NormAlignedGaussianSource.fit(data, batch=batch, center_graphs=center)
    norms = []
    for _ in range(20):
        x0 = src.sample(data, batch=batch, generator=g)
        norms.append(graphs.graph_sum((x0**2).sum(1), batch).sqrt().mean())
        if center:
            assert float(graphs.graph_mean(x0, batch).abs().max()) < 1e-9
    want = float(graphs.graph_sum((data**2).sum(1), batch).sqrt().mean())
    assert abs(float(torch.stack(norms).mean()) - want) < 0.01 * want


def test_pruning_finds_the_empty_half_axis_and_rejects_draws_near_it():
    g = torch.Generator().manual_seed(3)
    data = torch.randn(3000, 3, generator=g)
    data[:, 0] = data[:, 0].abs() * 3 + 1.0  # nothing ever points along -e0
    pr = DirectionalPruning.fit(data, threshold=0.5)
    assert pr.axes.shape[0] >= 1
    assert any(float(a[0]) < -0.9 for a in pr.axes)
    x0 = pr.sample(torch.empty(5000, 3), generator=g)
    cos = (x0 / x0.norm(dim=1, keepdim=True)) @ pr.axes.T
    assert bool((cos <= 0.5).all())
    # a plain Gaussian has such draws (otherwise the test would not test anything)
    z = torch.randn(5000, 3, generator=g)
    assert bool(((z / z.norm(dim=1, keepdim=True)) @ pr.axes.T > 0.5).any())


def test_symmetric_data_prunes_nothing():
    data = torch.randn(2000, 4, generator=torch.Generator().manual_seed(4))
    pr = DirectionalPruning.fit(data)
    assert pr.axes.shape[0] == 0
    z = pr.sample(torch.empty(10, 4), generator=torch.Generator().manual_seed(5))
    assert z.shape == (10, 4)


def test_pruning_on_equal_size_graphs_and_clear_errors():
    g = torch.Generator().manual_seed(6)
    batch = torch.arange(200).repeat_interleave(2)
    data = torch.randn(400, 2, generator=g)
    data[:, 0] = data[:, 0].abs() + 0.5
    pr = DirectionalPruning.fit(data, batch=batch, threshold=0.6)
    x0 = pr.sample(torch.empty(400, 2), batch=batch, generator=g)
    assert bool(pr.accept(x0, batch=batch).all())
    with pytest.raises(ValueError, match="all graphs must have one size"):
        DirectionalPruning.fit(data[:5], batch=torch.tensor([0, 0, 1, 1, 1]))
    with pytest.raises(ValueError, match="scale must be"):
        NormAlignedGaussianSource(scale=0.0)
    with pytest.raises(ValueError, match="zero norm"):
        NormAlignedGaussianSource.fit(torch.zeros(4, 2))


def test_gaussian_source_mean_scale_and_centring_per_graph():
    batch = torch.tensor([0, 0, 0, 1, 1])
    mid = torch.arange(15.0).reshape(5, 3)
    src = GaussianSource(scale=0.2, center_graphs=True, mean=lambda cond: cond["mid"])
    g = torch.Generator().manual_seed(0)
    x0 = src.sample(torch.zeros(5, 3), cond={"mid": mid}, batch=batch, generator=g)
    # x0 = m + s * center(z): the noise has zero mean per graph and the draw is the documented one
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x0, mid + 0.2 * graphs.center(z, batch))
    torch.testing.assert_close(graphs.graph_mean(x0 - mid, batch), torch.zeros(2, 3), atol=1e-6, rtol=0)
    assert torch.equal(src(torch.zeros(5, 3), cond={"mid": mid}, batch=batch,
                           generator=torch.Generator().manual_seed(0)), x0)  # the function form


def test_source_adapters_and_errors():
    def fn(like, *, cond=None, batch=None, generator=None):
        return torch.ones_like(like)

    assert isinstance(as_source(fn), FunctionSource) and isinstance(as_source(fn), Source)
    assert isinstance(as_source(None), GaussianSource)
    src = GaussianSource()
    assert as_source(src) is src
    with pytest.raises(TypeError, match="sample"):
        as_source(3)
    with pytest.raises(ValueError, match="scale"):
        GaussianSource(scale=0.0)
    with pytest.raises(TypeError, match="mean"):
        GaussianSource(mean=[1.0, 2.0])
    with pytest.raises(ValueError, match="does not broadcast"):
        GaussianSource(mean=torch.zeros(4)).sample(torch.zeros(2, 3))

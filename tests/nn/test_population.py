"""Population encoder: k-NN graphs from cdist, the GCN operator, invariances, and bad input."""

import pytest
import torch

from sciflow.nn.population import (
    GCNLayer,
    NormalizedAdjacency,
    PopulationEncoder,
    knn_edges,
    knn_neighbors,
)


def _ragged(sizes, dim=2, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), dim, generator=g, dtype=dtype)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    return x, batch


def _dense_adjacency(edge_index, n, dtype=torch.float64):
    a = torch.zeros(n, n, dtype=dtype)
    a[edge_index[1], edge_index[0]] = 1.0  # row i gathers from its sources j
    a = a + torch.eye(n, dtype=dtype)
    inv = a.sum(1).rsqrt()
    return inv[:, None] * a * inv[None, :]


def test_knn_matches_brute_force_within_each_population():
    x, batch = _ragged([9, 14, 7])
    nbr = knn_neighbors(x, 4, batch)
    assert nbr.shape == (30, 4)
    for i in range(30):
        same = torch.nonzero(batch == batch[i]).flatten()
        others = same[same != i]
        d = (x[others] - x[i]).norm(dim=1)
        expected = others[torch.argsort(d)[:4]]
        assert nbr[i].tolist() == expected.tolist()


def test_knn_edges_layout_and_empty_graph():
    x, batch = _ragged([6, 6])
    e = knn_edges(x, 3, batch)
    assert e.shape == (2, 36)
    assert torch.equal(e[1], torch.arange(12).repeat_interleave(3))
    assert bool((batch[e[0]] == batch[e[1]]).all()) and bool((e[0] != e[1]).all())
    assert knn_neighbors(x, 0, batch).shape == (12, 0)


def test_knn_rejects_population_smaller_than_k():
    x, batch = _ragged([10, 4])
    with pytest.raises(ValueError, match=r"population 1 has 4 points .* k \+ 1 = 5"):
        knn_neighbors(x, 4, batch)
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        knn_neighbors(x, -1, batch)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalized_adjacency_product_and_gradient_match_dense(dtype):
    x, batch = _ragged([8, 11], dtype=dtype)
    e = knn_edges(x, 3, batch)
    adj = NormalizedAdjacency(e, 19, dtype=dtype)
    dense = _dense_adjacency(e, 19).to(dtype)
    h = torch.randn(19, 5, dtype=dtype, requires_grad=True)
    out = adj @ h
    torch.testing.assert_close(out, dense @ h)
    w = torch.randn(19, 5, dtype=dtype)
    (g,) = torch.autograd.grad((out * w).sum(), h)
    torch.testing.assert_close(g, dense.T @ w)


def test_adjacency_gradcheck_float64():
    x, batch = _ragged([7, 6], dtype=torch.float64)
    adj = NormalizedAdjacency(knn_edges(x, 2, batch), 13, dtype=torch.float64)
    h = torch.randn(13, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: adj @ v, (h,))


@pytest.mark.parametrize("d_in,d_out", [(2, 6), (6, 3)])
def test_gcn_layer_is_kipf_welling_operator(d_in, d_out):
    torch.manual_seed(0)
    x, batch = _ragged([9, 10], dim=d_in, dtype=torch.float64)
    e = knn_edges(x, 3, batch)
    layer = GCNLayer(d_in, d_out).double()
    torch.nn.init.normal_(layer.bias)
    expected = _dense_adjacency(e, 19) @ x @ layer.linear.weight.T + layer.bias
    torch.testing.assert_close(layer(x, e), expected)
    torch.testing.assert_close(layer(x, NormalizedAdjacency(e, 19, dtype=torch.float64)), expected)


def test_encoder_shapes_unit_norm_and_docstring_example():
    torch.manual_seed(0)
    enc = PopulationEncoder(3, hidden=8, layers=2, k=4)
    x, batch = _ragged([12, 20, 9], dim=3)
    z = enc(x, batch)
    assert z.shape == (3, 8)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    assert enc(x[:12]).shape == (1, 8)


@pytest.mark.parametrize("k", [0, 5])
def test_encoder_is_invariant_to_permuting_cells(k):
    torch.manual_seed(1)
    enc = PopulationEncoder(2, hidden=16, layers=3, k=k).double()
    x, batch = _ragged([15, 22], dtype=torch.float64)
    perm = torch.randperm(37)
    torch.testing.assert_close(enc(x[perm], batch[perm]), enc(x, batch))


def test_encoder_populations_are_independent():
    """A population's embedding does not depend on which other populations share the batch."""
    torch.manual_seed(2)
    enc = PopulationEncoder(2, hidden=16, layers=3, k=5).double()
    x, batch = _ragged([15, 22, 18], dtype=torch.float64)
    alone = enc(x[batch == 1])
    together = enc(x, batch)[1:2]
    torch.testing.assert_close(together, alone)


def test_encoder_depends_on_the_population():
    torch.manual_seed(3)
    enc = PopulationEncoder(2, hidden=16, layers=2, k=5)
    x, _ = _ragged([30])
    assert not torch.allclose(enc(x), enc(2.0 * x + 1.0))


def test_encoder_without_graph_is_deepsets():
    """k = 0: each point is encoded alone (A_hat = I), then mean-pooled."""
    torch.manual_seed(4)
    enc = PopulationEncoder(2, hidden=8, layers=2, k=0, normalize=False).double()
    x, batch = _ragged([5, 7], dtype=torch.float64)
    c0, c1 = enc.convs
    per_point = c1.linear(torch.relu(c0.linear(x) + c0.bias)) + c1.bias
    expected = torch.stack([per_point[:5].mean(0), per_point[5:].mean(0)])
    torch.testing.assert_close(enc(x, batch), expected)


def test_encoder_gradients_reach_every_layer():
    enc = PopulationEncoder(2, hidden=8, layers=3, k=4)
    x, batch = _ragged([10, 12])
    enc(x, batch).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_encoder_bad_input_errors():
    enc = PopulationEncoder(2, hidden=8, layers=2, k=4)
    x, batch = _ragged([10, 10])
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf values in 1 of 20 rows"):
        enc(bad, batch)
    with pytest.raises(ValueError, match=r"population\(s\) \[1\] have no points"):
        enc(x[:10], batch[:10], num_populations=2)
    with pytest.raises(ValueError, match="population 1 has 3 points"):
        enc(x[:13], batch[:13])
    with pytest.raises(ValueError, match="in_dim=2"):
        enc(torch.randn(10, 3))
    with pytest.raises(TypeError, match="floating-point"):
        enc(torch.ones(10, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        PopulationEncoder(2, k=-3)

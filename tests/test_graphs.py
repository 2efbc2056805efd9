import itertools

import pytest
import torch

from sciflow import graphs


def _batch():
    sizes = [3, 1, 4]
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    pos = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    return pos, batch


def _edge_set(ei):
    return set(map(tuple, ei.T.tolist()))


def test_full_edges_are_all_pairs_inside_graphs():
    pos, batch = _batch()
    expected = {(i, j) for i, j in itertools.permutations(range(8), 2) if batch[i] == batch[j]}
    assert _edge_set(graphs.full_edges(pos, batch)) == expected


def test_unsorted_batch_gives_same_edges():
    pos, batch = _batch()
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    ei = graphs.full_edges(pos[perm], batch[perm])
    assert _edge_set(perm[ei]) == _edge_set(graphs.full_edges(pos, batch))


def test_radius_edges_match_brute_force():
    pos, batch = _batch()
    cutoff = 1.5
    d = torch.cdist(pos, pos)
    expected = {(i, j) for i, j in itertools.permutations(range(8), 2)
                if batch[i] == batch[j] and d[i, j] < cutoff}
    assert _edge_set(graphs.radius_edges(pos, cutoff, batch)) == expected
    with pytest.raises(ValueError, match="cutoff"):
        graphs.radius_edges(pos, 0.0, batch)


def test_center_and_reductions():
    pos, batch = _batch()
    c = graphs.center(pos, batch)
    torch.testing.assert_close(graphs.graph_mean(c, batch), torch.zeros(3, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(graphs.graph_sum(pos, batch)[2], pos[4:].sum(0))
    assert graphs.graph_sizes(batch).tolist() == [3, 1, 4]
    assert graphs.num_graphs(batch, 8) == 3
    t = torch.tensor([0.1, 0.2, 0.3])
    assert graphs.expand_per_graph(t, batch).tolist() == pytest.approx([0.1] * 3 + [0.2] + [0.3] * 4)


def _unsorted_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor([3, 1, 4, 7]))
    batch = batch[torch.randperm(batch.numel(), generator=g)]
    return batch, torch.randn(batch.numel(), 2, 3, generator=g)


def _brute(batch, keep):
    n = batch.numel()
    return {(i, j) for i, j in itertools.permutations(range(n), 2)
            if batch[i] == batch[j] and keep(i, j)}


@pytest.mark.parametrize("block", [graphs.PAIR_BLOCK, 7])
def test_blocked_pair_rules_match_brute_force_on_unsorted_batches(monkeypatch, block):
    """Every rule, with blocks of whole graphs and (block=7) row blocks inside one graph."""
    monkeypatch.setattr(graphs, "PAIR_BLOCK", block)
    batch, ref = _unsorted_batch()
    d = torch.cdist(ref.transpose(0, 1), ref.transpose(0, 1))  # (2, N, N)
    assert _edge_set(graphs.radius_edges(ref[:, 0], 1.5, batch)) == _brute(
        batch, lambda i, j: d[0, i, j] < 1.5)
    assert _edge_set(graphs.reference_edges(ref, 1.2, batch)) == _brute(
        batch, lambda i, j: bool((d[:, i, j] < 1.2).any()))
    assert _edge_set(graphs.changing_edges(ref, 0.5, batch)) == _brute(
        batch, lambda i, j: abs(d[0, i, j] - d[1, i, j]) > 0.5)
    with pytest.raises(ValueError, match="K >= 2"):
        graphs.changing_edges(ref[:, :1], 0.5, batch)


def test_union_edges_marks_where_each_edge_came_from():
    a = torch.tensor([[0, 1], [1, 0]])
    b = torch.tensor([[1, 2], [0, 0]])
    edges, (in_a, in_b) = graphs.union_edges(3, a, b)
    assert _edge_set(edges) == {(0, 1), (1, 0), (2, 0)}
    listed = list(map(tuple, edges.T.tolist()))
    assert [listed[k] for k in in_a.nonzero()[:, 0]] == sorted(
        _edge_set(a), key=lambda e: (e[1], e[0]))
    assert set(listed[k] for k in in_b.nonzero()[:, 0]) == _edge_set(b)


def test_reductions_need_no_torch_geometric_and_handle_empty_graphs():
    x = torch.arange(12.0).reshape(6, 2)
    batch = torch.tensor([0, 0, 2, 2, 2, 0])
    torch.testing.assert_close(graphs.graph_sum(x, batch, 4),
                               torch.stack([x[[0, 1, 5]].sum(0), torch.zeros(2),
                                            x[2:5].sum(0), torch.zeros(2)]))
    mean = graphs.graph_mean(x, batch, 4)
    torch.testing.assert_close(mean[2], x[2:5].mean(0))
    assert mean[1].tolist() == [0.0, 0.0]

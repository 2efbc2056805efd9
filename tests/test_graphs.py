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

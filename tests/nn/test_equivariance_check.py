"""sciflow.testing.assert_equivariant must pass exact models and catch each kind of broken one."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from sciflow.graphs import graph_mean
from sciflow.nn import EGNN, GraphCondition, GraphContext
from sciflow.testing import (
    EquivarianceError,
    assert_equivariant,
    default_dtype,
    equivariance_errors,
    random_orthogonal,
)


def molecules(dtype=torch.float64) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch.from_data_list(
        [
            Data(pos=torch.randn(n, 3, generator=g, dtype=dtype), z=torch.ones(n, dtype=torch.long))
            for n in (3, 5, 4)
        ]
    )


def pair_sum(x: Tensor, batch: Tensor, weight) -> Tensor:
    """sum_j (x_i - x_j) w(|x_i - x_j|) over atoms j of the same graph: exactly equivariant."""
    r = x[:, None, :] - x[None, :, :]
    same = (batch[:, None] == batch[None, :]).to(x.dtype)
    return (r * (weight(r.norm(dim=-1)) * same)[..., None]).sum(1)


def exact(x, t, *, cond: GraphContext, batch):
    v = pair_sum(x, batch, lambda d: torch.exp(-d))
    if cond.condition is not None:
        v = v + cond.condition.node_vectors.sum(1) * t[batch, None]
    return v


def chiral(x, t, *, cond, batch):  # a pseudovector: right under rotations, wrong sign in a mirror
    return torch.linalg.cross(
        pair_sum(x, batch, lambda d: torch.exp(-d)), pair_sum(x, batch, lambda d: d)
    )


def fixed_axis(x, t, *, cond, batch):
    axis = torch.tensor([1.0, 0.0, 0.0], dtype=x.dtype)
    return pair_sum(x, batch, torch.exp) + axis * 0.1


def absolute_position(x, t, *, cond, batch):
    return pair_sum(x, batch, torch.exp) + 0.1 * x


def atom_order(x, t, *, cond, batch):
    local = torch.arange(x.shape[0]) - torch.searchsorted(batch, batch)  # index inside the graph
    return pair_sum(x, batch, torch.exp) * (1 + local[:, None].to(x.dtype))


def other_graphs(x, t, *, cond, batch):  # the batch-wide mean size: invariant, but shared
    spread = (x - graph_mean(x, batch)[batch]).norm(dim=-1).mean()
    return pair_sum(x, batch, torch.exp) * spread


def tiny_break(x, t, *, cond, batch):  # a 1e-6 relative error: invisible in float32 tolerance
    return exact(x, t, cond=cond, batch=batch) * (1 + 1e-6 * x[:, :1])


def test_exact_model_passes_with_conditioning_in_both_dtypes():
    """The conditioning vectors enter v directly, so this passes only if the check rotates them."""
    for dtype in (torch.float32, torch.float64):
        batch = molecules(dtype)
        cond = GraphCondition(node_vectors=torch.randn(batch.num_nodes, 2, 3, dtype=dtype))
        report = assert_equivariant(exact, batch, cond=cond)
        assert report.max_error < (1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize(
    "model, broken",
    [
        (chiral, {"reflection (det -1)"}),
        (fixed_axis, {"rotation (det +1)", "reflection (det -1)"}),
        (absolute_position, {"translation", "rotation (det +1)", "reflection (det -1)"}),
        (atom_order, {"permutation within graphs"}),
        (other_graphs, {"batch independence"}),
    ],
    ids=["chiral", "fixed-axis", "absolute-position", "atom-order", "other-graphs"],
)
def test_broken_models_are_caught_by_the_right_check(model, broken):
    report = equivariance_errors(model, molecules())
    failed = {f.split(":")[0] for f in report.failures(1e-9)}
    assert failed == broken, report
    with pytest.raises(EquivarianceError, match="not equivariant"):
        assert_equivariant(model, molecules())


def test_float64_tolerance_catches_what_float32_cannot():
    assert_equivariant(tiny_break, molecules(torch.float32))
    with pytest.raises(EquivarianceError, match="rotation"):
        assert_equivariant(tiny_break, molecules(torch.float64))


def test_zero_net_velocity_check():
    batch = molecules()
    cond = GraphCondition(node_vectors=torch.randn(batch.num_nodes, 1, 3, dtype=torch.float64))
    with pytest.raises(EquivarianceError, match="zero net velocity") as info:
        assert_equivariant(exact, batch, cond=cond, check_net_velocity=True)
    assert "rotation" not in str(info.value)

    def centred(x, t, *, cond, batch):
        v = exact(x, t, cond=cond, batch=batch)
        return v - graph_mean(v, batch)[batch]

    report = assert_equivariant(centred, batch, cond=cond, check_net_velocity=True)
    assert report.net_velocity < 1e-12


def test_random_orthogonal_has_requested_determinant():
    g = torch.Generator().manual_seed(0)
    for proper in (True, False):
        q = random_orthogonal(50, proper=proper, generator=g)
        torch.testing.assert_close(q @ q.transpose(1, 2), torch.eye(3).expand(50, 3, 3).double())
        torch.testing.assert_close(
            torch.linalg.det(q), torch.full((50,), 1.0 if proper else -1.0, dtype=torch.float64)
        )


def test_default_dtype_restores_after_errors_and_trials_cover_both_parities():
    before = torch.get_default_dtype()
    with pytest.raises(RuntimeError):
        with default_dtype(torch.float64):
            assert torch.get_default_dtype() == torch.float64
            raise RuntimeError
    assert torch.get_default_dtype() == before
    with pytest.raises(ValueError, match="both parities"):
        equivariance_errors(exact, molecules(), trials=1)


class MirrorBlindEGNN(EGNN):
    """An EGNN whose output gains a cross product: still rotation-equivariant, wrong in a mirror."""

    def velocity(self, graph):
        v = super().velocity(graph)
        return v + torch.linalg.cross(v, graph.aggregate(graph.vec))


class DriftingEGNN(EGNN):
    """An EGNN that leaks absolute positions into its output."""

    def velocity(self, graph):
        return super().velocity(graph) + 1e-3 * graph.pos


def test_check_catches_broken_real_networks():
    batch = molecules()
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        mirror_blind, drifting = MirrorBlindEGNN(hidden=8), DriftingEGNN(hidden=8)
    report = equivariance_errors(mirror_blind, batch)
    assert report.rotation < 1e-12 and report.reflection > 1e-6
    with pytest.raises(EquivarianceError, match="reflection"):
        assert_equivariant(mirror_blind, batch)
    with pytest.raises(EquivarianceError, match="translation"):
        assert_equivariant(drifting, batch)

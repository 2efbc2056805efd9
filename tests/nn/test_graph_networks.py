"""EGNN, PaiNN and the e3nn tensor-product net: equivariance in float32 and float64, the shared
contract (conditioning reaches the output, adapter, registry) and clear errors for bad input."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from sciflow.graphs import full_edges
from sciflow.nn import (
    GRAPH_VELOCITY_NETWORKS,
    GraphCondition,
    GraphContext,
    GraphVelocityField,
    make_graph_velocity,
)
from sciflow.testing import assert_equivariant, default_dtype

SMALL = {
    "egnn": {"hidden": 16},
    "painn": {"hidden": 16},
    "e3nn": {"hidden": 8, "radial_hidden": 16},
}
COND = {"node_vector_dim": 2, "node_scalar_dim": 1, "graph_scalar_dim": 2, "reference_dim": 2}


def molecules(sizes=(4, 6, 5), *, dtype=torch.float32, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    data = [
        Data(
            pos=1.5 * torch.randn(n, 3, generator=g, dtype=dtype),
            z=torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=g)],
        )
        for n in sizes
    ]
    return Batch.from_data_list(data)


def condition(batch: Batch, *, seed=1) -> GraphCondition:
    g = torch.Generator().manual_seed(seed)
    dtype = batch.pos.dtype
    n, b = batch.num_nodes, batch.num_graphs
    return GraphCondition(
        node_vectors=torch.randn(n, 2, 3, generator=g, dtype=dtype),
        node_scalars=torch.randn(n, 1, generator=g, dtype=dtype),
        graph_scalars=torch.randn(b, 2, generator=g, dtype=dtype),
        reference_positions=1.5 * torch.randn(n, 2, 3, generator=g, dtype=dtype),
    )


def build(name: str, dtype=torch.float32, **kw):
    torch.manual_seed(0)
    with default_dtype(dtype):
        return make_graph_velocity(name, **{**SMALL[name], **kw})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_networks_are_equivariant_with_vector_conditioning(name, dtype):
    batch = molecules(dtype=dtype)
    net = build(name, dtype, **COND)
    report = assert_equivariant(net, batch, cond=condition(batch))
    assert report.dtype == dtype and report.trials >= 3


@pytest.mark.parametrize(
    "name, kw",
    [
        ("egnn", {"cutoff": 2.5}),
        ("painn", {"cutoff": 2.5}),
        ("e3nn", {"cutoff": 2.5}),
        ("e3nn", {"lmax": 2, "hidden": 4}),
        ("egnn", {"zero_net_velocity": True}),
        ("painn", {"node_feature_dim": 3}),
    ],
    ids=[
        "egnn-cutoff",
        "painn-cutoff",
        "e3nn-cutoff",
        "e3nn-l2",
        "egnn-zero-net",
        "painn-features",
    ],
)
def test_network_variants_are_equivariant_in_float64(name, kw):
    batch = molecules(dtype=torch.float64)
    if "node_feature_dim" in kw:
        batch.x = torch.randn(batch.num_nodes, 3, dtype=torch.float64)
        del batch.z
    net = build(name, torch.float64, **kw)
    assert_equivariant(net, batch, check_net_velocity=kw.get("zero_net_velocity", False))


SCALING = {  # the options for large molecules, with reference geometries to keep pairs from
    "full-small": {"cutoff": 2.0, "full_graph_atoms": 5},
    "reference-bonds": {"cutoff": 2.0, "reference_cutoff": 2.0},
    "changing-pairs": {"cutoff": 2.0, "changing_pairs": 0.5, "mean_field": True},
    "sum-aggregation": {"cutoff": 2.0, "aggregation": "sum", "mean_field": True},
}


@pytest.mark.parametrize("variant", sorted(SCALING))
@pytest.mark.parametrize("name", sorted(SMALL))
def test_cutoff_graph_options_are_equivariant_in_float64(name, variant):
    batch = molecules(dtype=torch.float64)
    net = build(name, torch.float64, **COND, **SCALING[variant])
    assert_equivariant(net, batch, cond=condition(batch))


def test_kept_pairs_reach_the_velocity_beyond_the_cutoff():
    """Two atoms far apart in x feel each other through a changing pair (bonded in the second
    reference geometry only), and through the mean field; a plain cutoff graph has no edge."""
    pos = torch.tensor([[0.0, 0, 0], [6.0, 0, 0], [0.0, 1.0, 0]], dtype=torch.float64)
    ref = torch.stack([pos, torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.0, 1.0, 0]])], dim=1)
    cond = GraphCondition(reference_positions=ref.double())

    def response(**kw):
        net = build("egnn", torch.float64, reference_dim=2, cutoff=2.0, **kw)
        z = torch.tensor([6, 6, 1])
        v = net(pos, torch.tensor([0.4], dtype=torch.float64), z=z, cond=cond)
        v2 = net(pos, torch.tensor([0.4], dtype=torch.float64), z=torch.tensor([6, 8, 1]),
                 cond=cond)
        return float((v - v2)[0].abs().max().detach())  # does atom 0 see atom 1's element?

    assert response() == 0.0
    assert response(changing_pairs=0.5) > 1e-8
    assert response(mean_field=True) > 1e-8


def test_mean_aggregation_is_the_envelope_weighted_neighbour_mean():
    batch = molecules(sizes=(3, 7), dtype=torch.float64)
    for aggregation in ("mean", "sum"):
        net = build("egnn", torch.float64, cutoff=2.5, aggregation=aggregation)
        graph = net.encode(batch.pos, torch.rand(2, dtype=torch.float64), z=batch.z,
                           node_features=None, batch=batch.batch, cond=None, edge_index=None)
        weight = graph.envelope  # (E, 1)
        out = graph.aggregate(weight * 2.0)  # messages 2 f_cut(d_ij)
        degree = torch.zeros(batch.num_nodes, 1, dtype=torch.float64).index_add_(
            0, graph.dst, weight)
        expected = (2.0 * degree / degree.clamp_min(1.0) if aggregation == "mean"
                    else 2.0 * degree / net.avg_num_neighbors)
        torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_mean_aggregation_stays_bounded_as_graphs_grow(name):
    """The velocity of a fully connected molecule barely changes scale from 10 to 160 atoms with
    the mean aggregation (the constant-normalised sum grows with the neighbour count, what made
    a trained 22-atom EGNN blow up; the exact contrast is the test above)."""

    def peak(n: int, aggregation: str) -> float:
        g = torch.Generator().manual_seed(n)
        net = build(name, torch.float64, aggregation=aggregation, node_vector_dim=1)
        pos = 1.5 * torch.randn(n, 3, generator=g, dtype=torch.float64)
        cond = GraphCondition(node_vectors=torch.randn(n, 1, 3, generator=g, dtype=torch.float64))
        with torch.no_grad():
            v = net(pos, torch.tensor([0.5], dtype=torch.float64), z=torch.full((n,), 6),
                    cond=cond)
        return float(v.norm(dim=-1).mean())

    assert peak(160, "mean") / peak(10, "mean") < 1.5


def test_a_state_dict_from_before_the_aggregation_option_loads_as_sum():
    old = build("egnn", torch.float64)
    state = {k: v for k, v in old.state_dict().items() if k != "aggregation_mean"}
    new = build("egnn", torch.float64)
    assert new.aggregation == "mean"
    new.load_state_dict(state)
    assert new.aggregation == "sum" and not bool(new.aggregation_mean)
    again = build("egnn", torch.float64, aggregation="sum")
    again.aggregation = "mean"
    again.load_state_dict(build("egnn", torch.float64, aggregation="sum").state_dict())
    assert again.aggregation == "sum"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_fixed_sparse_edges_are_remapped_under_permutation(name):
    batch = molecules(dtype=torch.float64)
    edges = full_edges(batch.pos, batch.batch)
    near = (batch.pos[edges[0]] - batch.pos[edges[1]]).norm(dim=-1) < 2.5
    net = build(name, torch.float64)
    assert_equivariant(net, batch, edge_index=edges[:, near])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_input_reaches_the_velocity(name):
    batch = molecules(dtype=torch.float64)
    cond = condition(batch)
    net = build(name, torch.float64, **COND)
    t = torch.full((3,), 0.3, dtype=torch.float64)

    def v(**change):
        c = GraphCondition(**{**cond.__dict__, **{k: x for k, x in change.items() if k != "t"}})
        return net(batch.pos, change.get("t", t), z=batch.z, batch=batch.batch, cond=c)

    base = v()
    for change in (
        {"t": t + 0.2},
        {"node_vectors": cond.node_vectors.flip(1)},
        {"node_scalars": cond.node_scalars + 1},
        {"graph_scalars": cond.graph_scalars + 1},
        {"reference_positions": cond.reference_positions * 1.2},
    ):
        assert (v(**change) - base).abs().max() > 1e-6, f"{name} ignores {sorted(change)}"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_all_parameters_get_finite_gradients(name):
    batch = molecules()
    net = build(name, **COND)
    v = net(batch.pos, torch.rand(3), z=batch.z, batch=batch.batch, cond=condition(batch))
    (v**2).sum().backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads.values())
    assert sum(float(g.abs().sum()) for g in grads.values()) > 0


def test_adapter_follows_the_core_contract_and_single_graph_default():
    batch = molecules(sizes=(5,))
    net = build("egnn")
    field = GraphVelocityField(net)
    t = torch.tensor([0.4])
    direct = net(batch.pos, t, z=batch.z, batch=batch.batch)
    torch.testing.assert_close(
        field(batch.pos, t, cond=GraphContext.from_batch(batch), batch=batch.batch), direct
    )
    torch.testing.assert_close(net(batch.pos, 0.4, z=batch.z), direct)
    with pytest.raises(TypeError, match="GraphContext"):
        field(batch.pos, t, cond=None, batch=batch.batch)


def test_registry_builds_each_name_and_rejects_unknown():
    for name in GRAPH_VELOCITY_NETWORKS:
        assert callable(build(name))
    with pytest.raises(ValueError, match=r"'schnet'.*\['e3nn', 'egnn', 'painn'\]"):
        make_graph_velocity("schnet")


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"aggregation": "max"}, "aggregation"),
        ({"cutoff": 2.0, "reference_cutoff": 2.0}, "reference_dim >= 1"),
        ({"cutoff": 2.0, "changing_pairs": 0.5, "reference_dim": 1}, "reference_dim >= 2"),
        ({"full_graph_atoms": 30}, "without a cutoff"),
        ({"cutoff": -1.0}, "cutoff"),
    ],
)
def test_bad_graph_options_raise_clear_errors(kw, words):
    with pytest.raises(ValueError, match=words):
        build("egnn", **kw)


def test_bad_inputs_raise_clear_errors():
    batch = molecules()
    net = build("painn", node_vector_dim=2)
    cond = GraphCondition(node_vectors=torch.randn(batch.num_nodes, 2, 3))
    pos, z, b, t = batch.pos, batch.z, batch.batch, torch.rand(3)
    cases = [
        (ValueError, r"pos must have shape \(N, 3\)", dict(pos=pos[:, :2])),
        (ValueError, "pass z", dict(node_features=torch.randn(len(z), 2))),
        (ValueError, r"cond.node_vectors of shape \(15, 2, 3\), got None", dict(cond=None)),
        (
            ValueError,
            r"cond.node_vectors must have shape \(15, 2, 3\)",
            dict(cond=GraphCondition(node_vectors=torch.randn(15, 1, 3))),
        ),
        (
            ValueError,
            "graph_scalar_dim=0",
            dict(
                cond=GraphCondition(node_vectors=cond.node_vectors, graph_scalars=torch.randn(3, 1))
            ),
        ),
        (
            ValueError,
            "reference_dim=0",
            dict(
                cond=GraphCondition(
                    node_vectors=cond.node_vectors, reference_positions=torch.randn(15, 2, 3)
                )
            ),
        ),
        (TypeError, "float64", dict(pos=pos.double())),
        (ValueError, r"one time per sample/graph, shape \(3,\)", dict(t=torch.rand(2))),
        (ValueError, r"shape \(3,\); got shape \(15,\)", dict(t=torch.rand(15))),
        (ValueError, "different graphs", dict(edge_index=torch.tensor([[0], [5]]))),
        (ValueError, r"\[1, 100\]", dict(z=torch.zeros_like(z))),
    ]
    for error, message, change in cases:
        args = {"pos": pos, "t": t, "z": z, "batch": b, "cond": cond, **change}
        with pytest.raises(error, match=message):
            net(args.pop("pos"), args.pop("t"), **args)

"""The contract every equivariant graph velocity network in sciflow follows.

A graph velocity network maps a ragged batch of point clouds (molecules) to one velocity per atom::

    v = net(pos, t, *, z=..., batch=..., cond=GraphCondition(...))      # (N, 3)

and must be E(3)-equivariant: for any orthogonal Q (rotations and reflections) and translation b
applied to a graph, v -> v Q^T while v ignores b; permuting the atoms of a graph permutes v; and a
graph's velocity never depends on the other graphs in the batch. ``sciflow.testing`` checks all of
this for any network.

This module holds what the three networks share: the conditioning inputs (``GraphCondition``), the
base class that validates inputs, embeds invariants and builds edges from ``torch.cdist``-style
pairwise distances (``GraphVelocityNet``), the adapter to the core velocity contract
``model(x, t, *, cond=None, batch=None)`` that solvers call (``GraphVelocityField``), and an explicit
registry (``make_graph_velocity``).

Shapes: N atoms, B graphs, E directed edges, C conditioning vector channels.

Example (transition states: condition on reactant R and product P geometries)::

    net = make_graph_velocity("painn", hidden=128, layers=3, node_vector_dim=2)
    cond = GraphCondition(node_vectors=torch.stack([R - x, P - x], dim=1))    # (N, 2, 3)
    v = net(x, t, z=batch.z, batch=batch.batch, cond=cond)                   # (N, 3)
    field = GraphVelocityField(net)            # for solvers: field(x, t, cond=ctx, batch=...)
    ctx = GraphContext(z=batch.z, condition=cond)
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn
from typing_extensions import TypedDict

from sciflow.graphs import (
    center,
    changing_edges,
    expand_per_graph,
    full_edges,
    graph_mean,
    radius_edges,
    reference_edges,
    union_edges,
)
from sciflow.nn.embeddings import (
    CosineCutoff,
    ElementEmbedding,
    GaussianRBF,
    TimeEmbeddingKind,
    make_time_embedding,
)
from sciflow.nn.mlp import mlp, per_sample_time

__all__ = [
    "GraphCondition",
    "GraphContext",
    "EncodedGraph",
    "GraphVelocityModel",
    "GraphVelocityNet",
    "GraphNetOptions",
    "GraphVelocityField",
    "MeanField",
    "Aggregation",
    "GRAPH_VELOCITY_NETWORKS",
    "make_graph_velocity",
]


Aggregation = Literal["sum", "mean"]
"""How neighbour messages are combined: ``"sum"`` divides their sum by the constant
``avg_num_neighbors`` (the behaviour of models built before the option existed, grows with the
number of neighbours), ``"mean"`` by each atom's (envelope-weighted) neighbour count, at least 1
(bounded at any molecule size; the default for new models)."""


@dataclass(frozen=True)
class GraphCondition:
    """Optional conditioning of a graph velocity network.

    Attributes
    ----------
    node_vectors : (N, C, 3) or None
        Per-atom polar vectors that rotate with the molecule and must be translation invariant,
        e.g. for transition states the reactant and product positions of the same atom relative
        to its current position, ``stack([R - x, P - x], dim=1)``.
    node_scalars : (N, F) or None
        Per-atom invariant features (charges, bond counts, ...).
    graph_scalars : (B, G) or None
        Per-graph invariant features (a property to condition on, a guidance label, ...).
    reference_positions : (N, K, 3) or None
        K reference geometries of every graph in the atom order of ``pos`` (for transition states
        the reactant and the product). Every edge j -> i gets the radial basis of the distances
        |ref_i^k - ref_j^k| beside that of its current length: invariant pair features that tell
        the network which bonds a reference geometry has, without a message-passing detour.
    """

    node_vectors: Tensor | None = None
    node_scalars: Tensor | None = None
    graph_scalars: Tensor | None = None
    reference_positions: Tensor | None = None


@dataclass(frozen=True)
class GraphContext:
    """What a graph network needs beyond positions, carried as ``cond`` of the core contract.

    Exactly one of ``z`` (N,) atomic numbers and ``node_features`` (N, F) is set. ``edge_index``
    (2, E) fixes the edges (source row 0, target row 1); when None the network builds them from
    the current positions.
    """

    z: Tensor | None = None
    node_features: Tensor | None = None
    condition: GraphCondition | None = None
    edge_index: Tensor | None = None

    @classmethod
    def from_batch(cls, data: Any, condition: GraphCondition | None = None) -> GraphContext:
        """Take ``z`` (or ``x`` as node features when ``z`` is absent) from a PyG Batch."""
        z = getattr(data, "z", None)
        features = getattr(data, "x", None) if z is None else None
        if z is None and features is None:
            raise ValueError("the batch has neither atomic numbers `z` nor node features `x`")
        return cls(z=z, node_features=features, condition=condition)


@dataclass(frozen=True)
class EncodedGraph:
    """Validated inputs with invariant node features and edge geometry, handed to ``velocity``.

    Attributes
    ----------
    pos : (N, 3) positions.          batch : (N,) graph of each atom.    num_graphs : B.
    scalars : (N, S) invariant node features h^0 (element, time, scalar conditioning).
    vectors : (N, C, 3) conditioning vectors, or None.
    src, dst : (E,) edge j -> i; messages flow from ``src`` j to ``dst`` i.
    vec : (E, 3) r_ij = x_i - x_j.    length : (E,) |r_ij|.
    rbf : (E, R) radial basis of |r_ij|, then of |ref_i^k - ref_j^k| for every reference
        geometry k of the conditioning (R = num_rbf * (1 + K), the network's ``edge_dim``).
    envelope : (E, 1) cosine cutoff of |r_ij| for the edges a cutoff found (1 for the edges kept
        whatever the geometry), None for fully connected graphs.
    neighbor_norm : what divides neighbour sums in ``aggregate``: the constant Z (``"sum"``) or
        each atom's neighbour count (N, 1), clamped to >= 1 (``"mean"``).
    """

    pos: Tensor
    batch: Tensor
    num_graphs: int
    scalars: Tensor
    vectors: Tensor | None
    src: Tensor
    dst: Tensor
    vec: Tensor
    length: Tensor
    rbf: Tensor
    envelope: Tensor | None
    neighbor_norm: float | Tensor

    def aggregate(self, messages: Tensor) -> Tensor:
        """1/Z_i sum_{j -> i} m_ij: messages (E, *) summed into their target atoms -> (N, *)."""
        out = messages.new_zeros((self.pos.shape[0], *messages.shape[1:]))
        out.index_add_(0, self.dst, messages)
        norm = self.neighbor_norm
        if isinstance(norm, Tensor):
            norm = norm.reshape(-1, *([1] * (messages.dim() - 1)))
        return out / norm

    def graph_mean(self, h: Tensor) -> Tensor:
        """Each atom's graph mean of ``h``: (N, *) -> (N, *)."""
        return graph_mean(h, self.batch, self.num_graphs)[self.batch]


class MeanField(nn.Module):
    """A coarse global message: h_i <- h_i + MLP([h_i, mean_{j in g(i)} h_j]).

    Every atom hears a summary of its whole molecule in one step, whatever the cutoff; the mean
    of invariant scalars is invariant, so equivariance is untouched. Shapes: h (N, H) -> (N, H).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mix = mlp([2 * width, width, width])

    def forward(self, h: Tensor, graph: EncodedGraph) -> Tensor:
        return h + self.mix(torch.cat([h, graph.graph_mean(h)], dim=-1))


class GraphVelocityModel(Protocol):
    """Call signature shared by EGNN, PaiNN and the tensor-product network."""

    def __call__(
        self,
        pos: Tensor,
        t: Tensor | float,
        *,
        z: Tensor | None = None,
        node_features: Tensor | None = None,
        batch: Tensor | None = None,
        cond: GraphCondition | None = None,
        edge_index: Tensor | None = None,
    ) -> Tensor: ...


class GraphNetOptions(TypedDict, total=False):
    """Keyword options every graph velocity network accepts (see ``GraphVelocityNet``)."""

    node_feature_dim: int
    max_z: int
    node_vector_dim: int
    node_scalar_dim: int
    graph_scalar_dim: int
    time_dim: int
    time_embedding: TimeEmbeddingKind
    cutoff: float | None
    num_rbf: int
    rbf_max: float
    reference_dim: int
    avg_num_neighbors: float
    aggregation: Aggregation
    full_graph_atoms: int
    reference_cutoff: float | None
    changing_pairs: float | None
    mean_field: bool
    zero_net_velocity: bool


def _shape_error(name: str, value: Tensor, expected: str) -> ValueError:
    return ValueError(f"{name} must have shape {expected}, got {tuple(value.shape)}")


class GraphVelocityNet(nn.Module, ABC):
    """Base class: input checks, invariant embeddings, edges, then ``velocity`` of the subclass.

    h_i^0 = MLP([e(z_i) or W f_i, tau(t_{g(i)}), s_i, u_{g(i)}])

    with e an element embedding, f node features, tau a time embedding, s node scalars and u graph
    scalars of the conditioning. Edges are all ordered pairs inside a graph (``cutoff`` None) or
    the pairs closer than ``cutoff``, whose messages are then damped by a cosine envelope so the
    velocity stays continuous as atoms cross the cutoff. With a cutoff, edges whose presence does
    not depend on the current positions are kept besides, undamped: every pair of a graph of at
    most ``full_graph_atoms`` atoms, the pairs closer than ``reference_cutoff`` in a reference
    geometry, the pairs whose length changes by more than ``changing_pairs`` between reference
    geometries (:mod:`sciflow.graphs`). ``mean_field`` adds a per-graph mean-field message to
    every layer (:class:`MeanField`) for what lies beyond the cutoff.

    Parameters (keyword-only)
    -------------------------
    scalar_dim : width S of h^0, set by the subclass.
    node_feature_dim : 0 to embed atomic numbers ``z``; F > 0 to take ``node_features`` (N, F).
    max_z : largest atomic number the element embedding accepts.
    node_vector_dim, node_scalar_dim, graph_scalar_dim : sizes C, F, G of ``GraphCondition``.
    reference_dim : K, the number of reference geometries in ``GraphCondition.reference_positions``
        (their pair distances become edge features; ``edge_dim`` = num_rbf * (1 + K)).
    time_dim, time_embedding : size and kind of the time embedding.
    cutoff : edge cutoff radius, or None for fully connected graphs.
    num_rbf, rbf_max : Gaussian radial basis on [0, cutoff or rbf_max].
    avg_num_neighbors : constant that divides every neighbour sum with ``aggregation="sum"``
        (NequIP's normalisation).
    aggregation : ``"mean"`` (default) or ``"sum"`` (:data:`Aggregation`). The mean divides by the
        envelope-weighted neighbour count, so it stays continuous as edges cross the cutoff and
        bounded at any size. A state dict saved before this option existed loads as ``"sum"``,
        the behaviour it was trained with.
    full_graph_atoms : with a cutoff, graphs of at most this many atoms stay fully connected
        (0: the cutoff applies to every graph). Below the size where a cutoff pays
        (``benchmarks/graph_scaling.py``) this is both cheaper and what small models saw.
    reference_cutoff : with a cutoff, also keep the pairs closer than this in any reference
        geometry (needs ``reference_dim`` >= 1), e.g. the bonds of a reactant and a product.
    changing_pairs : with a cutoff, also keep the pairs whose length changes by more than this
        between reference geometries (needs ``reference_dim`` >= 2): the reacting atoms.
    mean_field : add a :class:`MeanField` message before every layer.
    zero_net_velocity : remove each graph's mean velocity, sum_i v_i = 0 (``sciflow.graphs.center``).
    """

    def __init__(
        self,
        *,
        scalar_dim: int,
        node_feature_dim: int = 0,
        max_z: int = 100,
        node_vector_dim: int = 0,
        node_scalar_dim: int = 0,
        graph_scalar_dim: int = 0,
        time_dim: int = 32,
        time_embedding: TimeEmbeddingKind = "sinusoidal",
        cutoff: float | None = None,
        num_rbf: int = 16,
        rbf_max: float = 10.0,
        reference_dim: int = 0,
        avg_num_neighbors: float = 16.0,
        aggregation: Aggregation = "mean",
        full_graph_atoms: int = 0,
        reference_cutoff: float | None = None,
        changing_pairs: float | None = None,
        mean_field: bool = False,
        zero_net_velocity: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("node_feature_dim", node_feature_dim),
            ("node_vector_dim", node_vector_dim),
            ("node_scalar_dim", node_scalar_dim),
            ("graph_scalar_dim", graph_scalar_dim),
            ("reference_dim", reference_dim),
            ("full_graph_atoms", full_graph_atoms),
        ):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if avg_num_neighbors <= 0:
            raise ValueError(f"avg_num_neighbors must be positive, got {avg_num_neighbors}")
        if aggregation not in ("sum", "mean"):
            raise ValueError(f"aggregation must be 'sum' or 'mean', got {aggregation!r}")
        for name, value, need in (("cutoff", cutoff, 0), ("reference_cutoff", reference_cutoff, 1),
                                  ("changing_pairs", changing_pairs, 2)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be None or positive, got {value!r}")
            if value is not None and reference_dim < need:
                raise ValueError(f"{name}={value} reads {need} reference geometries; build the "
                                 f"network with reference_dim >= {need} (got {reference_dim})")
        if cutoff is None and (full_graph_atoms or reference_cutoff or changing_pairs):
            raise ValueError("full_graph_atoms, reference_cutoff and changing_pairs add edges to "
                             "a cutoff graph; without a cutoff every pair is an edge already")
        self.node_feature_dim = node_feature_dim
        self.node_vector_dim = node_vector_dim
        self.node_scalar_dim = node_scalar_dim
        self.graph_scalar_dim = graph_scalar_dim
        self.reference_dim = reference_dim
        self.cutoff = cutoff
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.aggregation: Aggregation = aggregation
        # persistent, so a checkpoint records it; a state dict without it loads as "sum"
        self.register_buffer("aggregation_mean", torch.tensor(aggregation == "mean"))
        self.full_graph_atoms = full_graph_atoms
        self.reference_cutoff = reference_cutoff
        self.changing_pairs = changing_pairs
        self.mean_field = mean_field
        self.zero_net_velocity = zero_net_velocity

        self.node_embed: nn.Module = (
            nn.Linear(node_feature_dim, scalar_dim)
            if node_feature_dim
            else ElementEmbedding(scalar_dim, max_z=max_z)
        )
        self.time_embed = make_time_embedding(time_embedding, time_dim)
        in_dim = scalar_dim + time_dim + node_scalar_dim + graph_scalar_dim
        self.encoder = mlp([in_dim, scalar_dim, scalar_dim])
        self.rbf = GaussianRBF(num_rbf, stop=cutoff if cutoff is not None else rbf_max)
        self.envelope = CosineCutoff(cutoff) if cutoff is not None else None
        self.edge_dim = num_rbf * (1 + reference_dim)

    @abstractmethod
    def velocity(self, graph: EncodedGraph) -> Tensor:
        """Per-atom velocity (N, 3) from the encoded graph."""

    def forward(
        self,
        pos: Tensor,
        t: Tensor | float,
        *,
        z: Tensor | None = None,
        node_features: Tensor | None = None,
        batch: Tensor | None = None,
        cond: GraphCondition | None = None,
        edge_index: Tensor | None = None,
    ) -> Tensor:
        """Velocity of every atom.

        Shapes: pos (N, 3); t (B,) or scalar; z (N,) or node_features (N, F); batch (N,) or None
        for a single graph; cond fields (N, C, 3), (N, F_s), (B, G); edge_index (2, E) -> (N, 3).
        """
        graph = self.encode(
            pos, t, z=z, node_features=node_features, batch=batch, cond=cond, edge_index=edge_index
        )
        v = self.velocity(graph)
        return center(v, graph.batch) if self.zero_net_velocity else v

    def encode(
        self,
        pos: Tensor,
        t: Tensor | float,
        *,
        z: Tensor | None,
        node_features: Tensor | None,
        batch: Tensor | None,
        cond: GraphCondition | None,
        edge_index: Tensor | None,
    ) -> EncodedGraph:
        """Check the inputs and compute h^0 and the edge geometry."""
        n = self._check_pos(pos)
        if batch is None:
            batch = torch.zeros(n, dtype=torch.long, device=pos.device)
        elif batch.dtype != torch.long or batch.shape != (n,):
            raise ValueError(
                f"batch must be an int64 tensor of shape ({n},), got {batch.dtype} "
                f"{tuple(batch.shape)}"
            )
        num = int(batch.max()) + 1 if n else 0
        if n and int(batch.min()) < 0:
            raise ValueError(f"batch holds a negative graph id {int(batch.min())}")
        # exactly one time per graph: a per-atom t (N,) must not pass as N per-graph times
        t_graph = per_sample_time(t, num, like=pos)
        cond = cond if cond is not None else GraphCondition()

        parts = [self._embed_nodes(z, node_features, n), self.time_embed(t_graph)[batch]]
        if self.node_scalar_dim:
            s = self._require(cond.node_scalars, "cond.node_scalars", (n, self.node_scalar_dim))
            parts.append(s)
        if self.graph_scalar_dim:
            u = self._require(
                cond.graph_scalars, "cond.graph_scalars", (num, self.graph_scalar_dim)
            )
            parts.append(expand_per_graph(u, batch))
        references = None
        if self.reference_dim:
            references = self._require(
                cond.reference_positions, "cond.reference_positions", (n, self.reference_dim, 3)
            )
        vectors = None
        if self.node_vector_dim:
            vectors = self._require(
                cond.node_vectors, "cond.node_vectors", (n, self.node_vector_dim, 3)
            )
        self._reject_unused(cond)
        scalars = self.encoder(torch.cat([p.to(pos.dtype) for p in parts], dim=-1))

        fixed: Tensor | None = None  # edges kept whatever the geometry: no envelope
        if edge_index is None:  # which pairs are edges is discrete: no gradient through it
            refs = None if references is None else references.detach().to(pos.dtype)
            edge_index, fixed = self._edges(pos.detach(), batch, refs)
        else:
            self._check_edges(edge_index, batch)
        src, dst = edge_index[0], edge_index[1]
        vec = pos[dst] - pos[src]
        length = vec.norm(dim=-1)
        envelope = None
        if self.envelope is not None:
            envelope = self.envelope(length)
            if fixed is not None:
                envelope = torch.where(fixed, torch.ones_like(envelope), envelope)
            envelope = envelope[:, None]
        norm: float | Tensor = self.avg_num_neighbors
        if self.aggregation == "mean":
            weight = envelope[:, 0] if envelope is not None else torch.ones_like(length)
            count = length.new_zeros(n).index_add_(0, dst, weight)
            norm = count.clamp_min(1.0)[:, None]
        rbf = self.rbf(length)
        if references is not None:
            ref = references.to(pos.dtype)
            ref_length = (ref[dst] - ref[src]).norm(dim=-1)  # (E, K)
            rbf = torch.cat([rbf, self.rbf(ref_length).flatten(1)], dim=-1)
        return EncodedGraph(
            pos=pos,
            batch=batch,
            num_graphs=num,
            scalars=scalars,
            vectors=vectors,
            src=src,
            dst=dst,
            vec=vec,
            length=length,
            rbf=rbf,
            envelope=envelope,
            neighbor_norm=norm,
        )

    def _edges(self, pos: Tensor, batch: Tensor, references: Tensor | None
               ) -> tuple[Tensor, Tensor | None]:
        """Edges from the positions: all pairs without a cutoff, else the pairs within it plus
        the fixed ones the options keep. Returns edge_index (2, E) and the mask (E,) of fixed
        edges (None when there are none)."""
        if self.cutoff is None:
            return full_edges(pos, batch), None
        sets = [radius_edges(pos, self.cutoff, batch)]
        if self.full_graph_atoms:
            sizes = torch.bincount(batch)
            small = (sizes[batch] <= self.full_graph_atoms).nonzero()[:, 0]
            if small.numel():
                sets.append(small[full_edges(pos[small], batch[small])])
        if self.reference_cutoff is not None and references is not None:
            sets.append(reference_edges(references, self.reference_cutoff, batch))
        if self.changing_pairs is not None and references is not None:
            sets.append(changing_edges(references, self.changing_pairs, batch))
        if len(sets) == 1:
            return sets[0], None
        edges, masks = union_edges(pos.shape[0], *sets)
        fixed = torch.stack(masks[1:]).any(dim=0)
        return edges, fixed

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        key = prefix + "aggregation_mean"
        if key not in state_dict:  # saved before the option: trained with the constant sum
            state_dict[key] = torch.tensor(False)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.aggregation = "mean" if bool(self.aggregation_mean) else "sum"

    def _check_pos(self, pos: Tensor) -> int:
        if not isinstance(pos, Tensor):
            raise TypeError(f"pos must be a tensor of shape (N, 3), got {type(pos).__name__}")
        if pos.dim() != 2 or pos.shape[1] != 3:
            raise _shape_error("pos", pos, "(N, 3)")
        param = next(self.parameters())
        if pos.dtype != param.dtype:
            raise TypeError(
                f"pos has dtype {pos.dtype} but the network's parameters are {param.dtype}; build "
                "the network under torch.set_default_dtype(...) or call .to(dtype) to match"
            )
        return pos.shape[0]

    def _embed_nodes(self, z: Tensor | None, node_features: Tensor | None, n: int) -> Tensor:
        if self.node_feature_dim:
            if z is not None or node_features is None:
                raise ValueError(
                    f"this network was built with node_feature_dim={self.node_feature_dim}: pass "
                    "node_features (N, F) and not z"
                )
            return self.node_embed(
                self._require(node_features, "node_features", (n, self.node_feature_dim))
            )
        if z is None or node_features is not None:
            raise ValueError(
                "this network embeds atomic numbers: pass z (N,) and not node_features (build it "
                "with node_feature_dim=F to use node features)"
            )
        if z.shape != (n,):
            raise _shape_error("z", z, f"({n},)")
        return self.node_embed(z)

    @staticmethod
    def _require(value: Tensor | None, name: str, shape: tuple[int, ...]) -> Tensor:
        if value is None:
            raise ValueError(f"the network was built to use {name} of shape {shape}, got None")
        if tuple(value.shape) != shape:
            raise _shape_error(name, value, str(shape))
        return value

    def _reject_unused(self, cond: GraphCondition) -> None:
        for name, value, option, dim in (
            ("node_vectors", cond.node_vectors, "node_vector_dim", self.node_vector_dim),
            ("node_scalars", cond.node_scalars, "node_scalar_dim", self.node_scalar_dim),
            ("graph_scalars", cond.graph_scalars, "graph_scalar_dim", self.graph_scalar_dim),
            ("reference_positions", cond.reference_positions, "reference_dim", self.reference_dim),
        ):
            if value is not None and not dim:
                raise ValueError(
                    f"cond.{name} was given but the network was built with {option}=0; "
                    f"build it with {option}={value.shape[1]} to use it"
                )

    @staticmethod
    def _check_edges(edge_index: Tensor, batch: Tensor) -> None:
        if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype != torch.long:
            raise ValueError(
                f"edge_index must be int64 of shape (2, E), got {edge_index.dtype} "
                f"{tuple(edge_index.shape)}"
            )
        n = batch.shape[0]
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
            raise ValueError(f"edge_index refers to atoms outside [0, {n})")
        if bool((batch[edge_index[0]] != batch[edge_index[1]]).any()):
            raise ValueError(
                "edge_index joins atoms of different graphs; edges must stay inside "
                "one graph so that graphs do not influence each other"
            )


class GraphVelocityField(nn.Module):
    """Adapter from a graph network to the core contract ``model(x, t, *, cond, batch)``.

    ``x`` (N, 3) are the positions and ``cond`` a ``GraphContext`` carrying ``z`` or node
    features, the ``GraphCondition`` and optional fixed edges. This is how solvers and the flow
    matcher call graph networks.
    """

    def __init__(self, net: GraphVelocityNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        cond: GraphContext | None = None,
        batch: Tensor | None = None,
    ) -> Tensor:
        if not isinstance(cond, GraphContext):
            raise TypeError(
                "a graph velocity field needs cond=GraphContext(z=..., condition=...), got "
                f"{type(cond).__name__}"
            )
        return self.net(
            x,
            t,
            z=cond.z,
            node_features=cond.node_features,
            batch=batch,
            cond=cond.condition,
            edge_index=cond.edge_index,
        )


GRAPH_VELOCITY_NETWORKS: dict[str, str] = {
    "egnn": "sciflow.nn.egnn:EGNN",
    "painn": "sciflow.nn.painn:PaiNN",
    "e3nn": "sciflow.nn.tensor_product:TensorProductNet",
}


def make_graph_velocity(name: str, **kwargs: Any) -> GraphVelocityNet:
    """Build a registered graph velocity network by name, e.g. ``make_graph_velocity("egnn",
    hidden=64, layers=3)``. Names: see ``GRAPH_VELOCITY_NETWORKS``."""
    try:
        target = GRAPH_VELOCITY_NETWORKS[name]
    except KeyError:
        raise ValueError(
            f"unknown graph velocity network {name!r}; choose one of "
            f"{sorted(GRAPH_VELOCITY_NETWORKS)}"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)

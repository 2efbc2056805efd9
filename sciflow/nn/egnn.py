"""EGNN velocity network with several vector channels.

E(n)-equivariant graph network of Satorras, Hoogeboom & Welling, "E(n) Equivariant Graph Neural
Networks", ICML 2021, as used for generation by EDM (Hoogeboom et al., ICML 2022) and EquiFM
(Song et al., NeurIPS 2023). Messages are invariant scalars; vectors are only ever built from
coordinate differences and from vectors already present, scaled by invariant scalars, so the network
is equivariant to rotations, reflections, translations and permutations by construction.

Extension: each atom carries C vector channels V_i in R^{C x 3} instead of one coordinate update,
seeded from the conditioning vectors (e.g. R_i - x_i and P_i - x_i for transition states), and
their invariant projections enter the messages. The velocity is a learned mix of the channels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from typing_extensions import Unpack

from sciflow.nn.graph_velocity import (
    EncodedGraph,
    GraphNetOptions,
    GraphVelocityNet,
    MeanField,
)
from sciflow.nn.mlp import mlp

__all__ = ["EGNN", "EGNNLayer"]


class EGNNLayer(nn.Module):
    """One EGNN layer on scalars h (N, H) and vector channels V (N, C, 3).

    With r_ij = x_i - x_j, d_ij = |r_ij|, rhat_ij = r_ij / (d_ij + 1) (EDM's normalisation) and
    a_ij = [rbf(d_ij), V_i . rhat_ij, V_j . rhat_ij, V_i . V_j] (channel-wise dot products):

        m_ij  = phi_e(h_i, h_j, a_ij) * f_cut(d_ij)                      (E, H)
        V_i' = (1 + phi_v(h_i)) * V_i + 1/Z sum_j rhat_ij phi_x(m_ij)     (N, C, 3)  (EGNN eq. 7)
        h_i' = h_i + phi_h(h_i, 1/Z sum_j m_ij)                          (N, H)

    1/Z is the network's aggregation (``GraphVelocityNet``: 1/``avg_num_neighbors`` or the mean
    over neighbours, EGNN's own C = 1/(M - 1) on a full graph). EGNN feeds the raw d_ij^2 to
    phi_e; a Gaussian basis of d_ij is
    used here instead, better conditioned over the few-Angstrom range of molecules. The first
    linear map of phi_e is split over its inputs,
    W [h_i, h_j, a_ij] = A h_i + B h_j + C a_ij, so A h and B h are computed per atom, not per edge.
    """

    def __init__(
        self, hidden: int, channels: int, num_rbf: int, *, update_scalars: bool = True
    ) -> None:
        super().__init__()
        self.edge_dst = nn.Linear(hidden, hidden)
        self.edge_src = nn.Linear(hidden, hidden, bias=False)
        self.edge_geo = nn.Linear(num_rbf + 3 * channels, hidden, bias=False)
        self.edge_out = nn.Linear(hidden, hidden)
        self.coord = mlp([hidden, hidden, channels])
        # EGNN initialises the coordinate head near zero so early updates stay small.
        nn.init.xavier_uniform_(self.coord[-1].weight, gain=1e-3)
        self.gate = nn.Linear(hidden, channels)
        # The last layer's h' would reach no output, so it is not computed (nor parametrised).
        self.node = mlp([2 * hidden, hidden, hidden]) if update_scalars else None

    def forward(
        self, h: Tensor, vectors: Tensor, rhat: Tensor, graph: EncodedGraph
    ) -> tuple[Tensor, Tensor]:
        """h (N, H), vectors (N, C, 3), rhat (E, 3) -> h' (N, H), vectors' (N, C, 3)."""
        src, dst = graph.src, graph.dst
        v_dst, v_src = vectors[dst], vectors[src]  # (E, C, 3)
        invariants = torch.cat(
            [
                graph.rbf,
                (v_dst * rhat[:, None]).sum(-1),
                (v_src * rhat[:, None]).sum(-1),
                (v_dst * v_src).sum(-1),
            ],
            dim=-1,
        )
        pre = self.edge_dst(h)[dst] + self.edge_src(h)[src] + self.edge_geo(invariants)
        m = F.silu(self.edge_out(F.silu(pre)))
        if graph.envelope is not None:
            m = m * graph.envelope
        update = rhat[:, None, :] * self.coord(m)[:, :, None]  # (E, C, 3)
        vectors = (1.0 + self.gate(h))[:, :, None] * vectors + graph.aggregate(update)
        if self.node is not None:
            h = h + self.node(torch.cat([h, graph.aggregate(m)], dim=-1))
        return h, vectors


class EGNN(GraphVelocityNet):
    """EGNN velocity field v(x, t | z, cond) on a ragged batch of molecules.

    V^0 = W_in [conditioning vectors] (a channel mix, zeros without conditioning vectors),
    (h^{l+1}, V^{l+1}) = EGNNLayer(h^l, V^l) for l < L,   v_i = sum_c w_c V_i^{L,c}
    (with ``mean_field``, h^l passes a :class:`~sciflow.nn.graph_velocity.MeanField` first).

    Shapes: pos (N, 3), t (B,), z (N,), cond.node_vectors (N, C_in, 3) -> v (N, 3).

    Parameters (keyword-only)
    -------------------------
    hidden : width H of the scalar features.
    layers : number of EGNN layers L.
    vector_channels : C, vector channels per atom.
    **options : shared options of ``GraphVelocityNet`` (conditioning sizes, cutoff, time
        embedding, ``zero_net_velocity``, ...).
    """

    def __init__(
        self,
        *,
        hidden: int = 128,
        layers: int = 3,
        vector_channels: int = 4,
        **options: Unpack[GraphNetOptions],
    ) -> None:
        super().__init__(scalar_dim=hidden, **options)
        if layers < 1 or vector_channels < 1:
            raise ValueError(
                f"layers and vector_channels must be >= 1, got {layers}, {vector_channels}"
            )
        self.vector_channels = vector_channels
        self.vector_in = (
            nn.Linear(self.node_vector_dim, vector_channels, bias=False)
            if self.node_vector_dim
            else None
        )
        self.layers = nn.ModuleList(
            EGNNLayer(hidden, vector_channels, self.edge_dim, update_scalars=i < layers - 1)
            for i in range(layers)
        )
        self.vector_out = nn.Linear(vector_channels, 1, bias=False)
        self.global_messages = (
            nn.ModuleList(MeanField(hidden) for _ in range(layers)) if self.mean_field else None
        )

    def velocity(self, graph: EncodedGraph) -> Tensor:
        h = graph.scalars
        if self.vector_in is not None and graph.vectors is not None:
            vectors = self.vector_in(graph.vectors.transpose(1, 2)).transpose(1, 2)
        else:
            vectors = h.new_zeros((h.shape[0], self.vector_channels, 3))
        rhat = graph.vec / (graph.length[:, None] + 1.0)  # (E, 3), EDM's r_ij / (d_ij + 1)
        for i, layer in enumerate(self.layers):
            if self.global_messages is not None:
                h = self.global_messages[i](h, graph)
            h, vectors = layer(h, vectors, rhat, graph)
        return self.vector_out(vectors.transpose(1, 2))[..., 0]

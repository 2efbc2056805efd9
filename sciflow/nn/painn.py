"""PaiNN velocity network: scalar and Cartesian vector features with a gated equivariant readout.

Polarizable atom interaction neural network of Schuett, Unke & Gastegger, "Equivariant message
passing for the prediction of tensorial properties and molecular spectra", ICML 2021 — the layer
family behind TorchMD-ET, ET-Flow and TS-GEN. Every atom holds scalars s_i (H,) and vectors
v_i (3, H); vectors are only combined linearly over the channel axis, scaled by invariants, or built
from unit edge vectors, so the network is E(3)-equivariant (reflections included).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from typing_extensions import Unpack

from sciflow.nn.graph_velocity import (
    EncodedGraph,
    GraphNetOptions,
    GraphVelocityNet,
    MeanField,
)
from sciflow.nn.mlp import mlp

__all__ = ["PaiNN", "PaiNNMessage", "PaiNNUpdate", "GatedEquivariantBlock"]

_NORM_EPS = 1e-8  # keeps sqrt differentiable where a vector feature is exactly zero


def _norm(v: Tensor) -> Tensor:
    """Channel-wise length of vector features: (N, 3, H) -> (N, H)."""
    return torch.sqrt((v * v).sum(dim=1) + _NORM_EPS)


class PaiNNMessage(nn.Module):
    """Message block (PaiNN eqs. 7-8), rhat_ij = r_ij / |r_ij|:

        [ds, g_vv, g_vs]_ij = phi(s_j) * W(|r_ij|) * f_cut(|r_ij|)      phi: MLP, W: linear on rbf
        s_i += 1/Z sum_j ds_ij
        v_i += 1/Z sum_j ( g_vv,ij * v_j + g_vs,ij * rhat_ij )

    Shapes: s (N, H), v (N, 3, H).
    """

    def __init__(self, hidden: int, num_rbf: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.phi = mlp([hidden, hidden, 3 * hidden])
        self.filter = nn.Linear(num_rbf, 3 * hidden)

    def forward(self, s: Tensor, v: Tensor, graph: EncodedGraph) -> tuple[Tensor, Tensor]:
        w = self.filter(graph.rbf)
        if graph.envelope is not None:
            w = w * graph.envelope
        x = self.phi(s)[graph.src] * w
        ds, g_vv, g_vs = x.split(self.hidden, dim=-1)
        rhat = graph.vec / graph.length.clamp_min(1e-12)[:, None]
        dv = v[graph.src] * g_vv[:, None, :] + rhat[:, :, None] * g_vs[:, None, :]
        return s + graph.aggregate(ds), v + graph.aggregate(dv)


class PaiNNUpdate(nn.Module):
    """Update block (PaiNN eqs. 9-11), mixing each atom's scalars and vectors:

        [a_vv, a_sv, a_ss] = MLP([s_i, |V v_i|])
        v_i += a_vv * (U v_i)
        s_i += a_sv * <U v_i, V v_i> + a_ss

    U, V are bias-free linear maps over the channel axis. Shapes: s (N, H), v (N, 3, H).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.u = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, hidden, bias=False)
        self.mix = mlp([2 * hidden, hidden, 3 * hidden])

    def forward(self, s: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        uv, vv = self.u(v), self.v(v)
        a_vv, a_sv, a_ss = self.mix(torch.cat([s, _norm(vv)], dim=-1)).split(self.hidden, dim=-1)
        return s + a_sv * (uv * vv).sum(dim=1) + a_ss, v + a_vv[:, None, :] * uv


class GatedEquivariantBlock(nn.Module):
    """Gated equivariant block (Schuett et al. 2021, Fig. 3; Weiler et al. 2018 gating):

        [s', g] = MLP([s, |W_2 v|]),   v' = g * (W_1 v),   s' -> act(s') if ``scalar_activation``

    Shapes: s (N, H_in), v (N, 3, H_in) -> s' (N, S_out), v' (N, 3, V_out).
    """

    def __init__(
        self, hidden: int, *, scalar_out: int, vector_out: int, scalar_activation: bool
    ) -> None:
        super().__init__()
        self.scalar_out = scalar_out
        self.w1 = nn.Linear(hidden, vector_out, bias=False)
        self.w2 = nn.Linear(hidden, vector_out, bias=False)
        self.mix = mlp([hidden + vector_out, hidden, scalar_out + vector_out])
        self.act = nn.SiLU() if scalar_activation else nn.Identity()

    def forward(self, s: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        out = self.mix(torch.cat([s, _norm(self.w2(v))], dim=-1))
        s_out, gate = out[:, : self.scalar_out], out[:, self.scalar_out :]
        return self.act(s_out), gate[:, None, :] * self.w1(v)


class PaiNN(GraphVelocityNet):
    """PaiNN velocity field v(x, t | z, cond) on a ragged batch of molecules.

    s^0 = h^0 (invariant embedding), v^0 = W_in [conditioning vectors] (zeros without them);
    L times: message then update (after a ``MeanField`` on s with ``mean_field``); readout: two
    gated equivariant blocks H -> H/2 -> 1 vector.

    Shapes: pos (N, 3), t (B,), z (N,), cond.node_vectors (N, C_in, 3) -> v (N, 3).

    Parameters (keyword-only)
    -------------------------
    hidden : H, number of scalar and of vector channels.
    layers : L, message + update blocks.
    **options : shared options of ``GraphVelocityNet``.
    """

    def __init__(
        self, *, hidden: int = 128, layers: int = 3, **options: Unpack[GraphNetOptions]
    ) -> None:
        super().__init__(scalar_dim=hidden, **options)
        if layers < 1 or hidden < 2:
            raise ValueError(f"need layers >= 1 and hidden >= 2, got {layers}, {hidden}")
        self.hidden = hidden
        self.vector_in = (
            nn.Linear(self.node_vector_dim, hidden, bias=False) if self.node_vector_dim else None
        )
        self.messages = nn.ModuleList(PaiNNMessage(hidden, self.edge_dim) for _ in range(layers))
        self.updates = nn.ModuleList(PaiNNUpdate(hidden) for _ in range(layers))
        self.global_messages = (
            nn.ModuleList(MeanField(hidden) for _ in range(layers)) if self.mean_field else None
        )
        half = hidden // 2
        self.readout = nn.ModuleList(
            [
                GatedEquivariantBlock(
                    hidden, scalar_out=half, vector_out=half, scalar_activation=True
                ),
                GatedEquivariantBlock(half, scalar_out=0, vector_out=1, scalar_activation=False),
            ]
        )

    def velocity(self, graph: EncodedGraph) -> Tensor:
        s = graph.scalars
        if self.vector_in is not None and graph.vectors is not None:
            v = self.vector_in(graph.vectors.transpose(1, 2))  # (N, 3, H)
        else:
            v = s.new_zeros((s.shape[0], 3, self.hidden))
        for i, (message, update) in enumerate(zip(self.messages, self.updates)):
            if self.global_messages is not None:
                s = self.global_messages[i](s, graph)
            s, v = message(s, v, graph)
            s, v = update(s, v)
        for block in self.readout:
            s, v = block(s, v)
        return v[..., 0]

"""e3nn tensor-product velocity network (NequIP-style interaction blocks, readout to ``1x1o``).

Node features are irreducible representations of O(3): ``m x 0e + m_v x 1o`` (``+ m_v x 2e`` with
``lmax=2``). Messages are tensor products of neighbour features with the spherical harmonics of the
edge direction, weighted by a learned function of the edge length — the interaction block of
Batzner et al., "E(3)-equivariant graph neural networks for data-efficient and accurate interatomic
potentials" (NequIP), Nat. Commun. 13, 2453 (2022), built on Geiger & Smidt, "e3nn: Euclidean
neural networks", arXiv:2207.09453 (2022). Equivariance holds by construction for rotations and
reflections; only even-parity even-l and odd-parity odd-l irreps are kept, so ``1x1o`` (a polar
vector, like a velocity) is a natural output.

Build the module under ``torch.set_default_dtype(torch.float64)`` for float64 use: e3nn bakes
Clebsch-Gordan constants at construction, and casting afterwards loses precision.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import torch
from e3nn import o3
from e3nn.nn import Gate
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

__all__ = ["TensorProductNet", "InteractionBlock", "EdgeTensorProduct", "hidden_irreps"]


def hidden_irreps(scalar_mul: int, vector_mul: int, lmax: int) -> o3.Irreps:
    """``scalar_mul x 0e + vector_mul x 1o [+ vector_mul x 2e]``: natural-parity irreps up to lmax."""
    if lmax not in (1, 2):
        raise ValueError(f"lmax must be 1 or 2, got {lmax}")
    if scalar_mul < 1 or vector_mul < 1:
        raise ValueError(f"multiplicities must be >= 1, got {scalar_mul}, {vector_mul}")
    parts = [(scalar_mul, (0, 1))] + [
        (vector_mul, (ell, (-1) ** ell)) for ell in range(1, lmax + 1)
    ]
    return o3.Irreps(parts)


class EdgeTensorProduct(nn.Module):
    """Weighted "uvu" tensor product of neighbour features with edge spherical harmonics.

        out^{(p)}_{e,u,k} = sqrt(2 l_3 + 1) w^{(p)}_{e,u} sum_{i,j} C^{l_1 l_2 l_3}_{ijk} x_{e,u,i} Y_{e,j}

    for every path p = (l_1 of the input, l_2 of the harmonics, l_3 among ``targets``) allowed by
    parity and the triangle rule, with C = ``o3.wigner_3j`` and one weight per edge, path and
    channel u. This is ``o3.TensorProduct(irreps_in, irreps_sh, irreps_out, self.instructions,
    shared_weights=False)`` with e3nn's default normalisation (one output slot per path, so the
    path weight is sqrt(2 l_3 + 1)); the tests check values and gradients agree. It is evaluated
    path by path on per-irrep blocks, gathered from the atoms only after splitting, so the
    backward pass never builds zero-padded gradients the size of the whole edge batch, a large
    part of the cost of e3nn's generated code on CPU (``benchmarks/equivariant_nets.py`` times
    both).

    Shapes: x (N, irreps_in.dim) atom features with ``src`` (E,) the atom of each edge, or x
    (E, irreps_in.dim) with ``src`` None; y (E, irreps_sh.dim); w (E, weight_numel) ->
    one tensor (E, 2 l_3 + 1, mul) per path (channels last), in the order of ``irreps_out``.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, targets: set[o3.Irrep]) -> None:
        super().__init__()
        self.paths: list[_Path] = []
        self.instructions: list[tuple[int, int, int, str, bool]] = []  # e3nn's format
        out: list[tuple[int, o3.Irrep]] = []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out not in targets:
                        continue
                    cg = o3.wigner_3j(ir_in.l, ir_sh.l, ir_out.l) * ir_out.dim**0.5
                    # (d1, d2, d3) -> (d2, d1 * d3): contracting Y first is one small matmul
                    self.register_buffer(f"cg{len(out)}", cg.transpose(0, 1).reshape(ir_sh.dim, -1))
                    self.paths.append(_Path(i, j, ir_in.dim, ir_sh.l, ir_out.dim))
                    self.instructions.append((i, j, len(out), "uvu", True))
                    out.append((mul, ir_out))
        self.irreps_in, self.irreps_sh = irreps_in, irreps_sh
        self.irreps_out = o3.Irreps(out)
        self.weight_numel = sum(mul for mul, _ in out)
        self._blocks = [(mul, ir.dim) for mul, ir in irreps_in]

    def forward(self, x: Tensor, y: Tensor, w: Tensor, src: Tensor | None = None) -> list[Tensor]:
        n, e = x.shape[0], y.shape[0]
        sizes = [mul * dim for mul, dim in self._blocks]
        # e3nn stores a block as (mul, dim); work channels-last, (dim, mul), so that every
        # per-edge broadcast and reduction runs over contiguous channels.
        blocks = [
            part.reshape(n, mul, dim).transpose(1, 2).contiguous()
            for part, (mul, dim) in zip(x.split(sizes, dim=1), self._blocks)
        ]
        if src is not None:
            blocks = [block[src] for block in blocks]  # gather after splitting: cheap backward
        ys = y.split([ir.dim for _, ir in self.irreps_sh], dim=1)
        ws = w.split([mul for mul, _ in self.irreps_out], dim=1)
        outputs = []
        for p, (path, w_p) in enumerate(zip(self.paths, ws)):
            cg = getattr(self, f"cg{p}")
            x_p, y_p = blocks[path.i_in], ys[path.i_sh]
            if path.l_sh == 0:  # C^{l0l} = identity / sqrt(2l+1): only a scale per edge
                outputs.append(x_p * (w_p * (y_p * cg[0, 0])).unsqueeze(1))
                continue
            a = (y_p @ cg).reshape(e, path.d_in, path.d_out)  # (E, d1, d3)
            w_p = w_p.unsqueeze(1)  # (E, 1, u)
            if path.d_in == 1:  # (E, 1, u) * (E, d3, 1)
                outputs.append((x_p * w_p) * a.transpose(1, 2))
            elif path.d_out == 1:  # sum_i (E, d1, u) * (E, d1, 1)
                outputs.append((x_p * a).sum(dim=1, keepdim=True) * w_p)
            else:  # sum_i x_i a_i, unbound (not sliced) so the backward stacks gradients once
                terms = [
                    x_i * a_i.unsqueeze(-1)
                    for x_i, a_i in zip(x_p.unsqueeze(2).unbind(1), a.unbind(1))
                ]
                outputs.append(functools.reduce(operator.add, terms) * w_p)
        return outputs


@dataclass(frozen=True)
class _Path:
    """One tensor-product path: its input and harmonics irrep blocks and dimensions."""

    i_in: int
    i_sh: int
    d_in: int
    l_sh: int
    d_out: int


class InteractionBlock(nn.Module):
    """NequIP interaction block with a residual connection.

        m_ij = TP_uvu( (W_in h)_j , Y(rhat_ij) ; R(|r_ij|) f_cut(|r_ij|) )
        h_i' = h_i + Gate( W_out 1/Z sum_j m_ij )

    Y: spherical harmonics up to lmax; TP_uvu: one weight per (path, channel), produced per edge by
    the radial MLP R on a Gaussian basis of |r_ij| (``EdgeTensorProduct``); W_in, W_out:
    equivariant linear maps (o3.Linear); Gate: SiLU on scalars, sigmoid-gated l > 0 channels
    (Weiler et al. 2018). Messages are summed per path, then concatenated on the atoms.

    Shapes: h (N, irreps.dim), sh (E, irreps_sh.dim) -> (N, irreps.dim).
    """

    def __init__(
        self, irreps: o3.Irreps, irreps_sh: o3.Irreps, *, num_rbf: int, radial_hidden: int
    ) -> None:
        super().__init__()
        self.linear_in = o3.Linear(irreps, irreps)
        self.tp = EdgeTensorProduct(irreps, irreps_sh, {ir for _, ir in irreps})
        self.radial = mlp([num_rbf, radial_hidden, radial_hidden, self.tp.weight_numel])
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
        self.gate = Gate(
            scalars, [F.silu], o3.Irreps(f"{gated.num_irreps}x0e"), [torch.sigmoid], gated
        )
        self.linear_out = o3.Linear(self.tp.irreps_out, self.gate.irreps_in)

    def forward(self, h: Tensor, sh: Tensor, graph: EncodedGraph) -> Tensor:
        weights = self.radial(graph.rbf)
        if graph.envelope is not None:
            weights = weights * graph.envelope
        paths = self.tp(self.linear_in(h), sh, weights, src=graph.src)
        n = h.shape[0]
        summed = torch.cat(
            [graph.aggregate(m).transpose(1, 2).reshape(n, -1) for m in paths], dim=-1
        )
        return h + self.gate(self.linear_out(summed))


class TensorProductNet(GraphVelocityNet):
    """e3nn tensor-product velocity field v(x, t | z, cond) on a ragged batch of molecules.

    h^0 = [h_scalar^0 (m x 0e), W_v [conditioning vectors] (m_v x 1o), 0 (m_v x 2e)],
    h^{l+1} = InteractionBlock(h^l),   v = o3.Linear(h^L -> 1x1o)
    (with ``mean_field``, the 0e block of h^l passes a ``MeanField`` first).

    Shapes: pos (N, 3), t (B,), z (N,), cond.node_vectors (N, C_in, 3) -> v (N, 3). e3nn's ``1o``
    basis is (x, y, z) order, so Cartesian vectors enter and leave without permutation.

    Parameters (keyword-only)
    -------------------------
    hidden : m, multiplicity of the scalar (0e) channels.
    vector_mul : m_v, multiplicity of each l > 0 irrep (default: ``hidden``).
    layers : number of interaction blocks.
    lmax : 1 (default) or 2, the highest degree of spherical harmonics and features.
    radial_hidden : width of the radial MLP.
    **options : shared options of ``GraphVelocityNet``.
    """

    def __init__(
        self,
        *,
        hidden: int = 64,
        vector_mul: int | None = None,
        layers: int = 3,
        lmax: int = 1,
        radial_hidden: int = 64,
        **options: Unpack[GraphNetOptions],
    ) -> None:
        super().__init__(scalar_dim=hidden, **options)
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        vector_mul = hidden if vector_mul is None else vector_mul
        self.irreps = hidden_irreps(hidden, vector_mul, lmax)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.sh = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")
        self.vector_in = (
            o3.Linear(f"{self.node_vector_dim}x1o", f"{vector_mul}x1o")
            if self.node_vector_dim
            else None
        )
        self.blocks = nn.ModuleList(
            InteractionBlock(
                self.irreps, self.irreps_sh, num_rbf=self.edge_dim, radial_hidden=radial_hidden
            )
            for _ in range(layers)
        )
        self.readout = o3.Linear(self.irreps, "1x1o")
        self.hidden = hidden
        self.global_messages = (
            nn.ModuleList(MeanField(hidden) for _ in range(layers)) if self.mean_field else None
        )
        self._vector_dim = 3 * vector_mul
        self._pad = self.irreps.dim - hidden - self._vector_dim  # the 2e block when lmax = 2

    def velocity(self, graph: EncodedGraph) -> Tensor:
        n = graph.scalars.shape[0]
        parts = [graph.scalars]
        if self.vector_in is not None and graph.vectors is not None:
            parts.append(self.vector_in(graph.vectors.reshape(n, -1)))
        else:
            parts.append(graph.scalars.new_zeros((n, self._vector_dim)))
        if self._pad:
            parts.append(graph.scalars.new_zeros((n, self._pad)))
        h = torch.cat(parts, dim=-1)
        sh = self.sh(graph.vec)
        for i, block in enumerate(self.blocks):
            if self.global_messages is not None:  # on the 0e block only: invariant in, out
                m = self.hidden
                h = torch.cat([self.global_messages[i](h[:, :m], graph), h[:, m:]], dim=-1)
            h = block(h, sh, graph)
        return self.readout(h)

"""Shared checks for sciflow models, usable from any test suite.

``assert_equivariant(model, batch)`` checks that a graph velocity network is E(3)-equivariant on a
ragged PyG batch, the way the field tests such networks (e3nn's ``assert_equivariant``,
OA-ReactDiff's reflection and subgraph tests), all in one call:

- rotation / reflection: v(Q x + b_Q) = Q v(x) for random orthogonal Q per graph, with det +1 and
  det -1 alternating over ``trials`` (rotations about each graph's centroid; conditioning vectors
  rotate with the atoms),
- translation: v(x + b_g) = v(x) for a random shift b_g per graph,
- permutation: v(x[P]) = v(x)[P] for a random permutation P within each graph (fixed edges remapped),
- batch independence: each graph's velocity equals the velocity of that graph run alone,
- zero net velocity (optional): sum_{i in g} v_i = 0.

Errors are relative: max |a - b| / max |v|. Run it in float32 and float64, building the model in
float64 for the second run (``with default_dtype(torch.float64): model = ...``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from sciflow.graphs import graph_mean, graph_sum, num_graphs
from sciflow.nn.graph_velocity import (
    GraphCondition,
    GraphContext,
    GraphVelocityField,
    GraphVelocityNet,
)

__all__ = [
    "EquivarianceError",
    "EquivarianceReport",
    "assert_equivariant",
    "default_dtype",
    "default_tolerance",
    "equivariance_errors",
    "random_orthogonal",
]

VelocityField = Callable[..., Tensor]


class EquivarianceError(AssertionError):
    """A model broke a symmetry it must respect; the message lists which and by how much."""


@dataclass(frozen=True)
class EquivarianceReport:
    """Largest relative errors max |a - b| / max |v| of each check (0 is exact).

    ``net_velocity`` is None when zero net velocity was not checked.
    """

    rotation: float
    reflection: float
    translation: float
    permutation: float
    batch_independence: float
    net_velocity: float | None
    dtype: torch.dtype
    trials: int

    @property
    def max_error(self) -> float:
        """The worst error over all checks."""
        values = [
            self.rotation,
            self.reflection,
            self.translation,
            self.permutation,
            self.batch_independence,
        ]
        return max(values + ([self.net_velocity] if self.net_velocity is not None else []))

    def failures(self, rtol: float) -> list[str]:
        """Names and errors of the checks whose error exceeds ``rtol``."""
        checks = {
            "rotation (det +1)": self.rotation,
            "reflection (det -1)": self.reflection,
            "translation": self.translation,
            "permutation within graphs": self.permutation,
            "batch independence": self.batch_independence,
            "zero net velocity": self.net_velocity,
        }
        return [f"{k}: {v:.2e}" for k, v in checks.items() if v is not None and not v <= rtol]


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance for equivariance errors: 1e-9 in float64, 1e-4 in float32."""
    return {torch.float64: 1e-9, torch.float32: 1e-4}.get(dtype, 1e-2)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Temporarily set torch's default dtype (to build modules in float64), restoring it after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def random_orthogonal(
    n: int,
    *,
    proper: bool,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """n Haar-random 3x3 orthogonal matrices with det +1 (``proper``) or det -1: (n, 3, 3).

    QR of a Gaussian matrix with the signs of R's diagonal moved into Q gives a Haar rotation or
    reflection (Mezzadri 2007); negating one column then fixes the determinant's sign.
    """
    a = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    wrong = (torch.linalg.det(q) > 0) != proper
    q[wrong, :, 0] = -q[wrong, :, 0]
    return q.to(dtype)


@dataclass(frozen=True)
class _Graphs:
    """One evaluation's inputs: positions, time, context, batch vector."""

    pos: Tensor
    t: Tensor
    context: GraphContext
    batch: Tensor


_Run = Callable[[_Graphs], Tensor]


def _as_field(model: GraphVelocityNet | VelocityField) -> VelocityField:
    return GraphVelocityField(model) if isinstance(model, GraphVelocityNet) else model


def _model_dtype(model: Any, fallback: torch.dtype) -> torch.dtype:
    params = getattr(model, "parameters", None)
    if params is None:
        return fallback
    first = next(iter(params()), None)
    return first.dtype if first is not None else fallback


def _map_condition(
    cond: GraphCondition | None,
    *,
    nodes: Callable[[Tensor], Tensor] = lambda x: x,
    graphs: Callable[[Tensor], Tensor] = lambda x: x,
    vectors: Callable[[Tensor], Tensor] | None = None,
) -> GraphCondition | None:
    """Apply ``nodes`` to every per-atom field, ``graphs`` to per-graph ones, then ``vectors``
    (a rotation) to the conditioning vectors and reference geometries."""
    if cond is None:
        return None

    def opt(f: Callable[[Tensor], Tensor], x: Tensor | None) -> Tensor | None:
        return None if x is None else f(x)

    node_vectors = opt(nodes, cond.node_vectors)
    references = opt(nodes, cond.reference_positions)
    if vectors is not None:
        node_vectors = opt(vectors, node_vectors)
        references = opt(vectors, references)
    return GraphCondition(
        node_vectors=node_vectors,
        node_scalars=opt(nodes, cond.node_scalars),
        graph_scalars=opt(graphs, cond.graph_scalars),
        reference_positions=references,
    )


def _select_nodes(g: _Graphs, index: Tensor, graph_ids: Tensor, new_batch: Tensor) -> _Graphs:
    """Keep atoms ``index`` (in this order) and graphs ``graph_ids``, edges remapped."""
    ctx = g.context
    edge_index = ctx.edge_index
    if edge_index is not None:
        new_id = torch.full((g.pos.shape[0],), -1, dtype=torch.long, device=g.pos.device)
        new_id[index] = torch.arange(index.numel(), device=g.pos.device)
        mapped = new_id[edge_index]
        edge_index = mapped[:, (mapped >= 0).all(dim=0)]
    context = GraphContext(
        z=None if ctx.z is None else ctx.z[index],
        node_features=None if ctx.node_features is None else ctx.node_features[index],
        condition=_map_condition(
            ctx.condition, nodes=lambda x: x[index], graphs=lambda x: x[graph_ids]
        ),
        edge_index=edge_index,
    )
    return _Graphs(pos=g.pos[index], t=g.t[graph_ids], context=context, batch=new_batch)


def _relative(a: Tensor, b: Tensor, scale: float) -> float:
    return float((a - b).abs().max()) / scale if a.numel() else 0.0


def _orthogonal_error(run: _Run, g: _Graphs, v: Tensor, q: Tensor, scale: float) -> float:
    """v(Q (x - c) + c) against Q v(x), with Q (N, 3, 3) per atom and c the graph centroids."""

    def rotate(x: Tensor) -> Tensor:  # (N, ..., 3)
        return torch.einsum("nij,n...j->n...i", q, x)

    centroid = graph_mean(g.pos, g.batch, g.t.shape[0])[g.batch]
    condition = _map_condition(g.context.condition, vectors=rotate)
    moved = replace(
        g, pos=rotate(g.pos - centroid) + centroid, context=replace(g.context, condition=condition)
    )
    return _relative(run(moved), rotate(v), scale)


def _permutation_error(
    run: _Run, g: _Graphs, v: Tensor, gen: torch.Generator, scale: float
) -> float:
    """v(x[P]) against v(x)[P] for a random permutation P that keeps every atom in its graph."""
    noise = torch.rand(g.batch.shape[0], generator=gen, dtype=torch.float64)
    perm = torch.argsort(g.batch.cpu().to(torch.float64) + noise).to(g.pos.device)
    graphs = torch.arange(g.t.shape[0], device=g.pos.device)
    return _relative(run(_select_nodes(g, perm, graphs, g.batch[perm])), v[perm], scale)


def _independence_error(run: _Run, g: _Graphs, v: Tensor, scale: float) -> float:
    """Each graph run alone against its rows of the batched velocity."""
    worst = 0.0
    for graph in range(g.t.shape[0]):
        index = (g.batch == graph).nonzero()[:, 0]
        if index.numel():
            alone = _select_nodes(
                g, index, torch.tensor([graph], device=index.device), torch.zeros_like(index)
            )
            worst = max(worst, _relative(run(alone), v[index], scale))
    return worst


def equivariance_errors(
    model: GraphVelocityNet | VelocityField,
    batch: Any,
    *,
    t: Tensor | None = None,
    cond: GraphCondition | None = None,
    edge_index: Tensor | None = None,
    trials: int = 3,
    check_net_velocity: bool = False,
    seed: int = 0,
) -> EquivarianceReport:
    """Measure every symmetry error of ``model`` on ``batch`` (see the module docstring).

    Parameters
    ----------
    model : a ``GraphVelocityNet`` or any callable with the core contract
        ``model(x, t, *, cond=GraphContext, batch=batch) -> (N, 3)``.
    batch : a PyG ``Batch`` (or anything with ``pos`` (N, 3), ``batch`` (N,) and ``z`` (N,) or
        ``x`` (N, F)); cast to the model's parameter dtype.
    t : (B,) per-graph times; uniform random when None.
    cond : conditioning; its ``node_vectors`` are rotated with the atoms.
    edge_index : fixed edges (2, E) to pass to the model, remapped under permutations; None lets
        the model build its own.
    trials : number of random orthogonal transforms, alternating det +1 and det -1 (>= 2).
    check_net_velocity : also measure |sum_{i in g} v_i| (for models that centre their output).
    seed : seed of the random transforms.
    """
    if trials < 2:
        raise ValueError(f"trials must be >= 2 to cover both parities, got {trials}")
    pos = getattr(batch, "pos", None)
    if not isinstance(pos, Tensor) or pos.dim() != 2 or pos.shape[-1] != 3:
        raise ValueError("batch must carry positions `pos` of shape (N, 3)")
    dtype = _model_dtype(model, pos.dtype if pos.is_floating_point() else torch.float32)
    device = pos.device
    gen = torch.Generator().manual_seed(seed)

    def cast(x: Tensor) -> Tensor:
        return x.to(dtype) if x.is_floating_point() else x

    ids = getattr(batch, "batch", None)
    ids = torch.zeros(pos.shape[0], dtype=torch.long, device=device) if ids is None else ids
    num = num_graphs(ids, pos.shape[0])
    t = torch.rand(num, generator=gen, dtype=torch.float64).to(device) if t is None else t
    plain = GraphContext.from_batch(batch)
    context = GraphContext(
        z=plain.z,
        node_features=None if plain.node_features is None else cast(plain.node_features),
        condition=_map_condition(cond, nodes=cast, graphs=cast),
        edge_index=edge_index,
    )
    g = _Graphs(pos=cast(pos), t=cast(t), context=context, batch=ids)
    field = _as_field(model)

    def run(g: _Graphs) -> Tensor:
        return field(g.pos, g.t, cond=g.context, batch=g.batch)

    with torch.no_grad():
        v = run(g)
        if v.shape != g.pos.shape:
            raise ValueError(f"model returned shape {tuple(v.shape)}, expected {tuple(pos.shape)}")
        scale = max(float(v.abs().max()), torch.finfo(dtype).tiny)
        errors = {True: 0.0, False: 0.0}  # keyed by det Q = +1
        for trial in range(trials):
            proper = trial % 2 == 0
            q = random_orthogonal(num, proper=proper, generator=gen, dtype=dtype).to(device)
            errors[proper] = max(errors[proper], _orthogonal_error(run, g, v, q[ids], scale))
        spread = float(g.pos.std()) if g.pos.numel() > 3 else 1.0
        shift = 2.0 * spread * torch.randn(num, 3, generator=gen, dtype=torch.float64)
        translated = replace(g, pos=g.pos + shift.to(device, dtype)[ids])
        return EquivarianceReport(
            rotation=errors[True],
            reflection=errors[False],
            translation=_relative(run(translated), v, scale),
            permutation=_permutation_error(run, g, v, gen, scale),
            batch_independence=_independence_error(run, g, v, scale),
            net_velocity=(
                float(graph_sum(v, ids, num).abs().max()) / scale if check_net_velocity else None
            ),
            dtype=dtype,
            trials=trials,
        )


def assert_equivariant(
    model: GraphVelocityNet | VelocityField,
    batch: Any,
    *,
    t: Tensor | None = None,
    cond: GraphCondition | None = None,
    edge_index: Tensor | None = None,
    trials: int = 3,
    rtol: float | None = None,
    check_net_velocity: bool = False,
    seed: int = 0,
) -> EquivarianceReport:
    """Raise ``EquivarianceError`` unless every error of ``equivariance_errors`` is <= rtol.

    ``rtol`` defaults to ``default_tolerance`` of the model's dtype (1e-4 float32, 1e-9 float64).
    Returns the report so callers can log the errors.
    """
    report = equivariance_errors(
        model,
        batch,
        t=t,
        cond=cond,
        edge_index=edge_index,
        trials=trials,
        check_net_velocity=check_net_velocity,
        seed=seed,
    )
    tol = default_tolerance(report.dtype) if rtol is None else rtol
    failed = report.failures(tol)
    if failed:
        raise EquivarianceError(
            f"{type(model).__name__} is not equivariant in {report.dtype} (relative tolerance "
            f"{tol:.0e}): " + "; ".join(failed)
        )
    return report

"""The flow-map model X(x, s, t), its networks, warm starts from a velocity teacher, and sampling.

A flow map jumps from time s to time t along a probability-flow ODE dx/dt = v(x, t):

    X(x, s, t) = x + (t - s) F(x, s, t)

so X(x, s, s) = x exactly whatever F is, and dX/dt at t = s is F(x, s, s): the diagonal of F is
the velocity of the flow the map integrates (Kim et al. 2024, CTM; Boffi, Albergo &
Vanden-Eijnden 2024, "Flow map matching"). For a graph network F that is E(3)-equivariant
(rotations and translations act on x, F rotates and ignores translations), X is equivariant too:
X(Q x + b, s, t) = Q X(x, s, t) + b.

Networks (``F(x, s, t, *, cond=None, batch=None)``, shaped like x):

- :class:`TwoTimeMLP` for dense vectors: MLP([x, tau(s), c, tau(t)]);
- :class:`GraphFlowMapNet` for ragged graph batches: any
  :class:`~sciflow.nn.GraphVelocityNet` run at time s with tau(t) appended to its per-graph
  invariant scalars (``GraphCondition.graph_scalars``), so every equivariant network of
  :mod:`sciflow.nn` serves as a flow map unchanged.

Both put the new input (the target time) in the last columns of the first layer, so
:func:`warm_start` can copy a trained velocity network into them with those columns zero: the
student then starts as one Euler step of its teacher, X(x, s, t) = x + (t - s) v(x, s).

Networks that predict the data (a teacher trained with ``FlowMatcher(target="x1")``, as the
transition-state and remote-sensing models are) keep that output: ``FlowMap(net, matcher=...)``
with the teacher's matcher reads F = matcher.prediction_to_velocity(net(x, s, t), x, s), the
velocity of the path through the network's data estimate (for the linear path
(x1_hat - x) / (1 - s) with the source mean's fallback at s = 1), so the jump is a DDIM-like step
towards that estimate and a warm start is again the teacher's Euler step.

Times ``s`` and ``t`` are one value per sample (per graph with ``batch``), as everywhere in sciflow;
Python floats and 0-d tensors are broadcast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from sciflow import graphs
from sciflow.matcher import FlowMatcher
from sciflow.nn.embeddings import TimeEmbeddingKind, make_time_embedding
from sciflow.nn.graph_velocity import GraphCondition, GraphContext, GraphVelocityNet
from sciflow.nn.mlp import mlp, per_sample_time
from sciflow.solvers import ODESolution, StepHook, time_loop, uniform_grid

__all__ = [
    "FlowMapNet",
    "FlowMap",
    "TwoTimeMLP",
    "GraphFlowMapNet",
    "WarmStart",
    "warm_start",
    "sample_flow_map",
]


class FlowMapNet(Protocol):
    """F(x, s, t, *, cond, batch) -> a tensor shaped like x (the average velocity of the jump)."""

    def __call__(self, x: Tensor, s: Tensor, t: Tensor, *, cond: Any = None,
                 batch: Tensor | None = None) -> Tensor: ...


def _groups(x: Tensor, batch: Tensor | None) -> int:
    return graphs.num_graphs(batch, x.shape[0]) if batch is not None else x.shape[0]


def _times(name: str, value: Tensor | float, n: int, like: Tensor) -> Tensor:
    """One time per sample (graph) as a (n,) tensor, checked to lie in [0, 1]."""
    try:
        t = per_sample_time(value, n, like=like)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    if t.numel() and bool(((t < 0) | (t > 1) | torch.isnan(t)).any()):
        bad = t[(t < 0) | (t > 1) | torch.isnan(t)][0].item()
        raise ValueError(f"{name} must lie in [0, 1] (0 source, 1 data), got {bad}")
    return t


class FlowMap(nn.Module):
    """X(x, s, t) = x + (t - s) F(x, s, t) around a network F (:class:`FlowMapNet`).

    ``matcher``: for a network that predicts the data, the teacher's FlowMatcher (``target="x1"``,
    with its path and source); F is then its output turned into a velocity at time s (module
    docstring). None (or a velocity-target matcher): the network's output is F itself.

    Shapes: x (N, *); s, t (B,) per sample, or per graph with ``batch`` (N,), or floats ->
    (N, *). The jump may go either way in time (t < s integrates backwards).

    Example
    -------
    >>> fmap = FlowMap(TwoTimeMLP(dim=2, hidden=32, layers=2))
    >>> x = torch.randn(5, 2)
    >>> bool((fmap(x, 0.3, 0.3) == x).all())
    True
    """

    def __init__(self, net: nn.Module, *, matcher: FlowMatcher | None = None) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module F(x, s, t, *, cond, batch), got "
                            f"{type(net).__name__}")
        if matcher is not None and not isinstance(matcher, FlowMatcher):
            raise TypeError(f"matcher must be a sciflow.matcher.FlowMatcher, got "
                            f"{type(matcher).__name__}")
        self.net = net
        self.matcher = matcher if matcher is not None and matcher.target == "x1" else None

    def _average_velocity(self, x: Tensor, s: Tensor, t: Tensor, cond: Any,
                          batch: Tensor | None) -> Tensor:
        out = self.net(x, s, t, cond=cond, batch=batch)
        if out.shape != x.shape:
            raise ValueError(f"the flow-map network returned shape {tuple(out.shape)} for x of "
                             f"shape {tuple(x.shape)}; F(x, s, t) must be shaped like x")
        if self.matcher is None:
            return out
        return self.matcher.prediction_to_velocity(out, x, s, cond=cond, batch=batch)

    def forward(self, x: Tensor, s: Tensor | float, t: Tensor | float, *, cond: Any = None,
                batch: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}")
        n = _groups(x, batch)
        s_, t_ = _times("s", s, n, x), _times("t", t, n, x)
        f = self._average_velocity(x, s_, t_, cond, batch)
        dt = graphs.expand_per_graph(t_ - s_, batch)
        return x + dt.reshape(-1, *([1] * (x.dim() - 1))) * f

    def velocity(self, x: Tensor, t: Tensor | float, *, cond: Any = None,
                 batch: Tensor | None = None) -> Tensor:
        """v(x, t) = F(x, t, t) = dX(x, t, u)/du at u = t: the flow the map integrates, with the
        velocity-field contract (usable by :func:`sciflow.solvers.odeint` and FlowMatcher)."""
        n = _groups(x, batch)
        tt = _times("t", t, n, x)
        return self._average_velocity(x, tt, tt, cond, batch)

    def jump_and_rate(self, x: Tensor, s: Tensor, t: Tensor, *, cond: Any = None,
                      batch: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """X(x, s, t) and its derivative dX/dt in the end time, by forward-mode AD
        (:func:`torch.func.jvp`; differentiable in the parameters). Shapes as :meth:`forward`."""
        n = _groups(x, batch)
        s_, t_ = _times("s", s, n, x), _times("t", t, n, x)

        def jump(tt: Tensor) -> Tensor:
            return self(x, s_, tt, cond=cond, batch=batch)

        return torch.func.jvp(jump, (t_,), (torch.ones_like(t_),))


class TwoTimeMLP(nn.Module):
    """Dense flow-map network F(x, s, t) = MLP([x, tau(s), c, tau'(t)]).

    The layout extends :class:`~sciflow.nn.MLPVelocity` ([x, tau(t), c]) by the target time in
    the last columns, so :func:`warm_start` copies a trained MLPVelocity of the same sizes into it.

    Shapes: x (B, dim), s and t (B,), cond (B, cond_dim) -> (B, dim); with ``batch`` (N,) the rows
    form B groups and s, t, cond are per group.
    """

    def __init__(self, dim: int, hidden: int = 128, layers: int = 3, *, cond_dim: int = 0,
                 time_dim: int = 32, time_embedding: TimeEmbeddingKind = "sinusoidal",
                 activation: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or layers < 1 or cond_dim < 0:
            raise ValueError(f"need dim, hidden, layers >= 1 and cond_dim >= 0; got dim={dim}, "
                             f"hidden={hidden}, layers={layers}, cond_dim={cond_dim}")
        self.dim, self.cond_dim = dim, cond_dim
        self.time_embed = make_time_embedding(time_embedding, time_dim)
        self.target_embed = make_time_embedding(time_embedding, time_dim)
        self.net = mlp([dim + 2 * time_dim + cond_dim, *([hidden] * layers), dim],
                       activation=activation)

    def forward(self, x: Tensor, s: Tensor, t: Tensor, *, cond: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        n = _groups(x, batch)
        s_ = graphs.expand_per_graph(per_sample_time(s, n, like=x), batch)
        t_ = graphs.expand_per_graph(per_sample_time(t, n, like=x), batch)
        parts = [x, self.time_embed(s_).to(x.dtype)]
        if self.cond_dim:
            if cond is None or cond.shape != (n, self.cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"this TwoTimeMLP was built with cond_dim={self.cond_dim}; pass "
                                 f"cond of shape ({n}, {self.cond_dim}), got {got}")
            parts.append(graphs.expand_per_graph(cond.to(x.dtype), batch))
        elif cond is not None:
            raise ValueError("cond was given but this TwoTimeMLP was built with cond_dim=0")
        parts.append(self.target_embed(t_).to(x.dtype))
        return self.net(torch.cat(parts, dim=-1))


class GraphFlowMapNet(nn.Module):
    """A graph velocity network as a flow-map network: F(x, s, t) = net(x, s | tau(t) as graph scalars).

    ``net`` must be built with ``graph_scalar_dim = G + target_dim``, G the per-graph scalars the
    conditioning itself carries (0 without); tau(t) fills the last ``target_dim`` of them. tau(t)
    is invariant, so F keeps every symmetry of ``net``.

    Called with the core contract: ``cond`` a :class:`~sciflow.nn.GraphContext` (``z`` or node
    features, the :class:`~sciflow.nn.GraphCondition`, optional fixed edges), ``batch`` (N,).
    Shapes: x (N, 3), s and t (B,) -> (N, 3).
    """

    def __init__(self, net: GraphVelocityNet, *, target_dim: int = 16,
                 time_embedding: TimeEmbeddingKind = "sinusoidal") -> None:
        super().__init__()
        if not isinstance(net, GraphVelocityNet):
            raise TypeError(f"net must be a sciflow.nn.GraphVelocityNet, got {type(net).__name__}")
        if net.graph_scalar_dim < target_dim:
            raise ValueError(f"net has graph_scalar_dim={net.graph_scalar_dim} but the target time "
                             f"needs target_dim={target_dim} of them; build the network with "
                             f"graph_scalar_dim=G + {target_dim} (G: the conditioning's own)")
        self.net = net
        self.target_dim = target_dim
        self.target_embed = make_time_embedding(time_embedding, target_dim)

    def forward(self, x: Tensor, s: Tensor, t: Tensor, *, cond: GraphContext | None = None,
                batch: Tensor | None = None) -> Tensor:
        if not isinstance(cond, GraphContext):
            raise TypeError("a graph flow map needs cond=GraphContext(z=..., condition=...), got "
                            f"{type(cond).__name__}")
        n = _groups(x, batch)
        target = self.target_embed(per_sample_time(t, n, like=x)).to(x.dtype)
        condition = cond.condition if cond.condition is not None else GraphCondition()
        own = condition.graph_scalars
        scalars = target if own is None else torch.cat([own.to(x.dtype), target], dim=-1)
        condition = GraphCondition(node_vectors=condition.node_vectors,
                                   node_scalars=condition.node_scalars, graph_scalars=scalars,
                                   reference_positions=condition.reference_positions)
        return self.net(x, s, z=cond.z, node_features=cond.node_features, batch=batch,
                        cond=condition, edge_index=cond.edge_index)


@dataclass(frozen=True)
class WarmStart:
    """What :func:`warm_start` did: entries copied as they are, entries widened (the teacher's
    columns first, zeros after), and student entries the teacher does not have (left as built)."""

    copied: tuple[str, ...]
    widened: tuple[str, ...]
    missing: tuple[str, ...]


@torch.no_grad()
def warm_start(student: nn.Module, teacher: nn.Module) -> WarmStart:
    """Load a trained velocity network into a flow-map network of the same layout plus a target time.

    Entries of the state dicts are matched by name (``student`` is the flow-map *network*, e.g.
    ``fmap.net``; ``teacher`` the velocity network whose names it shares: an MLPVelocity for a
    :class:`TwoTimeMLP`, a GraphVelocityField for a :class:`GraphFlowMapNet`). Equal shapes are
    copied; a 2-D weight with the same rows and more columns gets the teacher's columns first and
    zeros in the new ones, so the new input (the target time) starts ignored and F(x, s, t) =
    v(x, s). Raises ValueError when nothing matches or a shared name differs in another way.
    """
    mine, theirs = student.state_dict(), teacher.state_dict()
    copied, widened, missing = [], [], []
    for name, value in mine.items():
        src = theirs.get(name)
        if src is None:
            missing.append(name)
        elif src.shape == value.shape:
            value.copy_(src)
            copied.append(name)
        elif (value.dim() == 2 and src.dim() == 2 and src.shape[0] == value.shape[0]
              and src.shape[1] < value.shape[1]):
            value.zero_()
            value[:, : src.shape[1]].copy_(src)
            widened.append(name)
        else:
            raise ValueError(f"{name}: the teacher's entry has shape {tuple(src.shape)}, the "
                             f"student's {tuple(value.shape)}; build the student with the "
                             "teacher's sizes (only extra input columns can be added)")
    if not copied and not widened:
        raise ValueError("no entry of the teacher matches the student by name; pass the flow-map "
                         "network (fmap.net) and the velocity network with the same layout")
    student.load_state_dict(mine)
    return WarmStart(copied=tuple(copied), widened=tuple(widened), missing=tuple(missing))


def _grid(jumps: int | None, times: Sequence[float] | None) -> tuple[float, ...]:
    if times is None:
        if isinstance(jumps, bool) or not isinstance(jumps, int) or jumps < 1:
            raise ValueError(f"jumps must be an integer >= 1, got {jumps!r}")
        return uniform_grid(0.0, 1.0, jumps)
    grid = tuple(float(t) for t in times)
    if len(grid) < 2 or any(not 0.0 <= t <= 1.0 for t in grid):
        raise ValueError(f"times must hold >= 2 values in [0, 1], got {grid}")
    steps = [b - a for a, b in zip(grid[:-1], grid[1:])]
    if not (all(d > 0 for d in steps) or all(d < 0 for d in steps)):
        raise ValueError(f"times must be strictly monotone, got {grid}")
    return grid


@torch.no_grad()
def sample_flow_map(
    flow_map: Callable[..., Tensor],
    x0: Tensor,
    *,
    jumps: int | None = 1,
    times: Sequence[float] | None = None,
    cond: Any = None,
    batch: Tensor | None = None,
    hooks: Sequence[StepHook] = (),
    return_trajectory: bool = False,
) -> ODESolution:
    """Deterministic sampling with any number of jumps: x_{i+1} = X(x_i, t_i, t_{i+1}).

    The grid is ``uniform_grid(0, 1, jumps)`` or the given ``times`` (strictly monotone, in
    [0, 1]); each jump costs one network evaluation (``nfe`` = jumps). Runs on the one time loop
    of :mod:`sciflow.solvers`, so ``hooks(x, interval)`` (precision emulation, recording) apply.

    Shapes: x0 (N, *), with ``batch`` (N,) for graphs -> ODESolution.x (N, *).
    """
    if not isinstance(x0, Tensor) or not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor, got {type(x0).__name__}")
    grid = _grid(jumps, times)
    n = _groups(x0, batch)
    states = [x0]

    def advance(x: Tensor, step: Any) -> Tensor:
        s = torch.full((n,), step.t, dtype=x.dtype, device=x.device)
        t = torch.full((n,), step.t_next, dtype=x.dtype, device=x.device)
        return flow_map(x, s, t, cond=cond, batch=batch)

    def record(x: Tensor, step: Any) -> Tensor:
        states.append(x)
        return x

    every = [*hooks, record] if return_trajectory else list(hooks)
    x = time_loop(advance, x0, grid, hooks=every)
    return ODESolution(x=x, nfe=len(grid) - 1, times=grid,
                       trajectory=tuple(states) if return_trajectory else None)

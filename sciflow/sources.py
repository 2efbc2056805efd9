"""Source distributions: the :class:`Source` interface, the Gaussian source, and choices beyond it.

Every consumer of x0 draws — :class:`~sciflow.matcher.FlowMatcher` in training, the particle
searches of :mod:`sciflow.particles` at inference, the domains — calls one interface::

    x0 = source.sample(like, cond=cond, batch=batch, generator=generator)    # shaped like ``like``

``cond`` lets a source depend on the condition (a transition-state source centred on the
reactant/product midpoint: ``GaussianSource(scale=0.2, center_graphs=True, mean=midpoint_of)``);
sources that ignore it accept it all the same. A plain function with that signature is adapted by
:func:`as_source`.

Beyond N(0, I), after Lee, Kim & Lee 2025 ("Is there a better source distribution than Gaussian?
Exploring source distributions for image flow matching"), which keep the Gaussian's
omnidirectional coverage but

- **norm alignment** (training): scale the Gaussian so E||x0|| = E||x1||; a norm mismatch costs the
  flow a radial transport it must learn first. :class:`NormAlignedGaussianSource` (drop it into
  ``FlowMatcher(source=...)``) has its scale fitted exactly from data with the chi mean
  E||z|| = sqrt(2) Gamma((k+1)/2) / Gamma(k/2) for z ~ N(0, I_k).
- **directionally pruned sampling** (inference, no retraining): the principal axes +-u_j of the
  L2-normalised data along which *no* data point has cosine similarity above ``fit_threshold`` are
  data-sparse; at sampling, Gaussian draws whose cosine with any such axis exceeds ``threshold`` are
  rejected and redrawn (:class:`DirectionalPruning`). Rejection keeps the Gaussian law conditioned
  on the accepted cone, so the norm distribution is unchanged.

Graph batches: the norm-aligned source fits per graph (the chi mean with that graph's degrees of
freedom: n d, or (n - 1) d when centred) and samples like :class:`GaussianSource`. Pruning
compares whole samples as vectors, so for graphs every graph must have the same number of nodes
(each graph is one vector of n d coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from sciflow import graphs

__all__ = [
    "Source",
    "SourceFunction",
    "GaussianSource",
    "FunctionSource",
    "as_source",
    "chi_mean",
    "NormAlignedGaussianSource",
    "DirectionalPruning",
    "PruningRejectedError",
]


@runtime_checkable
class Source(Protocol):
    """Where x0 comes from: ``sample(like, *, cond, batch, generator)`` -> a tensor shaped like
    ``like`` (N, *), with ``batch`` (N,) for ragged graph batches and ``cond`` the conditions of
    the rows (per sample, per graph or per node, as the model takes them)."""

    def sample(self, like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor: ...


SourceFunction = Callable[..., Tensor]
"""A source written as a function ``fn(like, *, cond=None, batch=None, generator=None)``."""


def _source_mean(mean: Tensor | Callable[[Any], Tensor] | None, cond: Any, like: Tensor) -> Tensor | None:
    if mean is None:
        return None
    m = mean(cond) if callable(mean) else mean
    if not isinstance(m, Tensor):
        raise TypeError(f"the source mean must be a tensor (or a function of cond returning one), "
                        f"got {type(m).__name__}")
    try:
        torch.broadcast_shapes(m.shape, like.shape)
    except RuntimeError as err:
        raise ValueError(f"the source mean of shape {tuple(m.shape)} does not broadcast against "
                         f"the samples of shape {tuple(like.shape)}") from err
    return m.to(dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class GaussianSource:
    """x0 = m + scale * z, z ~ N(0, I), optionally with each graph's centre of mass removed from z.

    ``center_graphs=True`` draws z in the zero-centre-of-mass subspace, the right source for
    translation-invariant point clouds (molecules): then flows never drift the centre of mass.
    ``mean`` m is None (zero), a tensor broadcastable to the samples, or a function of ``cond``
    returning one (per node row for graphs), e.g. the midpoint (R + P) / 2 of a reaction.

    Shapes: like (N, *), batch (N,) -> (N, *).
    """

    scale: float = 1.0
    center_graphs: bool = False
    mean: Tensor | Callable[[Any], Tensor] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, (int, float)) and self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"scale must be a finite number > 0, got {self.scale!r}")
        if self.mean is not None and not (isinstance(self.mean, Tensor) or callable(self.mean)):
            raise TypeError(f"mean must be None, a tensor or a function of cond, got "
                            f"{type(self.mean).__name__}")

    def sample(self, like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw x0 shaped like ``like`` (the :class:`Source` interface)."""
        z = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
        x0 = self.scale * (graphs.center(z, batch) if self.center_graphs else z)
        m = self.mean_of(like, cond=cond)
        return x0 if m is None else m + x0

    def mean_of(self, like: Tensor, *, cond: Any = None) -> Tensor | None:
        """The mean m for samples shaped like ``like`` with conditions ``cond``; None when zero."""
        return _source_mean(self.mean, cond, like)

    def __call__(self, like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """The function form (``sciflow.particles.gaussian_source`` returned a function)."""
        return self.sample(like, cond=cond, batch=batch, generator=generator)


@dataclass(frozen=True)
class FunctionSource:
    """Adapts a :data:`SourceFunction` to the :class:`Source` interface."""

    fn: SourceFunction

    def sample(self, like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        return self.fn(like, cond=cond, batch=batch, generator=generator)


def as_source(source: Source | SourceFunction | None) -> Source:
    """The :class:`Source` for what a caller passed: None -> N(0, I), an object with ``sample``
    -> itself, a function ``fn(like, *, cond, batch, generator)`` -> :class:`FunctionSource`."""
    if source is None:
        return GaussianSource()
    if callable(getattr(source, "sample", None)):
        return source  # type: ignore[return-value]
    if callable(source):
        return FunctionSource(source)
    raise TypeError(f"source must have a sample(like, *, cond, batch, generator) method or be such "
                    f"a function, got {type(source).__name__}")


def chi_mean(k: Tensor | float) -> Tensor:
    """E||z|| for z ~ N(0, I_k): sqrt(2) Gamma((k+1)/2) / Gamma(k/2) (elementwise for a tensor k)."""
    kk = torch.as_tensor(k, dtype=torch.float64)
    return math.sqrt(2.0) * torch.exp(torch.lgamma((kk + 1) / 2) - torch.lgamma(kk / 2))


def _check_data(name: str, x: Tensor, batch: Tensor | None) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must be (N, *) with N >= 1 samples, got shape {tuple(x.shape)}")
    if batch is not None and (batch.dim() != 1 or batch.shape[0] != x.shape[0]):
        raise ValueError(f"batch must be (N,) with one graph index per row of {name} "
                         f"(N={x.shape[0]}), got shape {tuple(batch.shape)}")


@dataclass(frozen=True)
class NormAlignedGaussianSource:
    """x0 ~ N(0, scale^2 I) with ``scale`` chosen so that E||x0|| = E||x1|| (per sample or graph).

    Build it with :meth:`fit`; ``center_graphs`` draws zero-centre-of-mass noise per graph (and
    is then taken into account in the fit through the (n - 1) d degrees of freedom).

    Example
    -------
    >>> src = NormAlignedGaussianSource.fit(data)                     # doctest: +SKIP
    >>> fm = FlowMatcher(source=src)                                  # doctest: +SKIP
    """

    scale: float
    center_graphs: bool = False

    def __post_init__(self) -> None:
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"scale must be a finite float > 0, got {self.scale}")

    @classmethod
    def fit(cls, data: Tensor, *, batch: Tensor | None = None,
            center_graphs: bool = False) -> NormAlignedGaussianSource:
        """scale = E||x1|| / E||z||, both averaged over the samples (graphs) of ``data``.

        Shapes: data (N, *) dense, or (N, D) node rows with ``batch`` (N,).
        """
        _check_data("data", data, batch)
        x = data.detach().to(torch.float64)
        if batch is None:
            norms = x.reshape(x.shape[0], -1).norm(dim=1)
            dof = torch.full_like(norms, float(x[0].numel()))
        else:
            n = graphs.num_graphs(batch, x.shape[0])
            norms = graphs.graph_sum((x.reshape(x.shape[0], -1) ** 2).sum(1), batch, n).sqrt()
            sizes = graphs.graph_sizes(batch, n).to(torch.float64)
            dof = (sizes - (1 if center_graphs else 0)) * x[0].numel()
            if bool((dof < 1).any()):
                raise ValueError("a graph with one node has no degrees of freedom once centred; "
                                 "use center_graphs=False or drop single-node graphs")
        mean_norm = float(norms.mean())
        if mean_norm == 0.0:
            raise ValueError("data has zero norm everywhere; a norm-aligned source would be a point")
        return cls(scale=mean_norm / float(chi_mean(dof).mean()), center_graphs=center_graphs)

    def sample(self, like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw x0 shaped like ``like`` (the :class:`Source` interface; ``cond`` is unused)."""
        x0 = self.scale * torch.randn(like.shape, generator=generator, dtype=like.dtype,
                                      device=like.device)
        return graphs.center(x0, batch) if self.center_graphs else x0


class PruningRejectedError(RuntimeError):
    """Pruned sampling could not find enough accepted draws within ``max_rounds``."""


def _as_vectors(x: Tensor, batch: Tensor | None) -> Tensor:
    """Dense (N, *) -> (N, D); graphs of equal size n -> (B, n D) in node order."""
    if batch is None:
        return x.reshape(x.shape[0], -1)
    sizes = graphs.graph_sizes(batch)
    if bool((sizes != sizes[0]).any()):
        raise ValueError(f"directional pruning compares whole samples, so all graphs must have one "
                         f"size; got sizes from {int(sizes.min())} to {int(sizes.max())}")
    order = torch.argsort(batch, stable=True)
    return x[order].reshape(sizes.numel(), -1)


@dataclass(frozen=True)
class DirectionalPruning:
    """Gaussian draws with data-sparse principal directions cut out.

    ``axes`` (K, D): unit vectors (signed principal axes of the normalised data) that no data point
    reaches within cosine ``fit_threshold``; a draw z is rejected when max_j cos(z, axes_j) >
    ``threshold``. ``scale`` multiplies accepted draws (use the norm-aligned scale if trained so).
    """

    axes: Tensor
    threshold: float
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.axes.dim() != 2:
            raise ValueError(f"axes must be (K, D), got shape {tuple(self.axes.shape)}")
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {self.threshold}")

    @classmethod
    def fit(cls, data: Tensor, *, batch: Tensor | None = None, fit_threshold: float = 0.01,
            threshold: float | None = None, scale: float = 1.0,
            max_components: int | None = None) -> DirectionalPruning:
        """Find the data-sparse signed principal axes of ``data``.

        The data are L2-normalised per sample; the principal axes u_j of the normalised set (SVD of
        the centred matrix, at most ``max_components``) give 2 K candidates +-u_j; an axis is pruned
        when max_i cos(x_i, axis) <= ``fit_threshold``. ``threshold`` (default: min(3 / sqrt(D), 0.5),
        about three standard deviations of a random cosine in high dimension, capped at 60 degrees in
        low dimension) is the rejection cosine used at sampling.
        """
        _check_data("data", data, batch)
        vec = _as_vectors(data.detach().to(torch.float64), batch)
        unit = vec / vec.norm(dim=1, keepdim=True).clamp_min(1e-300)
        centred = unit - unit.mean(dim=0, keepdim=True)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        if max_components is not None:
            vh = vh[:max_components]
        candidates = torch.cat([vh, -vh], dim=0)
        reach = (unit @ candidates.T).max(dim=0).values
        axes = candidates[reach <= fit_threshold]
        d = vec.shape[1]
        thr = min(3.0 / math.sqrt(d), 0.5) if threshold is None else threshold
        return cls(axes=axes.to(data.dtype), threshold=float(thr), scale=scale)

    def accept(self, z: Tensor, *, batch: Tensor | None = None) -> Tensor:
        """Boolean (B,): True where the draw keeps away from every pruned axis."""
        vec = _as_vectors(z, batch)
        if self.axes.shape[0] == 0:
            return torch.ones(vec.shape[0], dtype=torch.bool, device=z.device)
        if vec.shape[1] != self.axes.shape[1]:
            raise ValueError(f"samples have {vec.shape[1]} coordinates but the pruned axes "
                             f"{self.axes.shape[1]}")
        cos = (vec / vec.norm(dim=1, keepdim=True)) @ self.axes.T.to(vec.dtype)
        return (cos <= self.threshold).all(dim=1)

    def sample(self, like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
               generator: torch.Generator | None = None, max_rounds: int = 1000) -> Tensor:
        """Draw x0 shaped like ``like``, redrawing rejected samples (graphs) until all are accepted.

        A :class:`Source` (``cond`` is unused); also usable at inference only, on a model trained
        with the plain Gaussian (the paper's post-hoc use).
        """
        out = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
        for _ in range(max_rounds):
            ok = self.accept(out, batch=batch)
            if bool(ok.all()):
                return self.scale * out
            redo = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
            rows = ~ok if batch is None else ~ok[batch]
            out = torch.where(rows.reshape(-1, *([1] * (out.dim() - 1))), redo, out)
        raise PruningRejectedError(f"{int((~self.accept(out, batch=batch)).sum())} draws still rejected "
                                   f"after max_rounds={max_rounds}; raise threshold={self.threshold}")

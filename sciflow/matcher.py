"""FlowMatcher: source distribution + coupling + path + time sampler + loss.

Conditional flow matching (Lipman et al. 2023; Tong et al. 2024) regresses a network on the
conditional velocity of a path between coupled pairs (x0, x1):

    L = E_{t, (x0, x1) ~ pi} || v_theta(x_t, t) - u_t(x_t | x0, x1) ||^2

or, with ``target="x1"``, || x1_theta(x_t, t) - x1 ||^2 (the network then predicts the data and
:meth:`FlowMatcher.velocity` converts it back to a velocity for the solvers through the path,
finite at t = 1: :meth:`~sciflow.paths.AffinePath.x1_to_velocity`).

The matcher is typed against the interfaces, not the implementations: ``path`` is any
:class:`~sciflow.paths.ProbPath` (affine with any scheduler, the stochastic interpolant),
``source`` any :class:`~sciflow.sources.Source` (it receives the batch's conditions; a function
``fn(like, *, cond, batch, generator)`` is adapted),
``coupling`` any :class:`~sciflow.couplings.Coupling`.

Training in two steps (what the :class:`~sciflow.train.Trainer` overlaps): :meth:`FlowMatcher.couple`
draws x0 and solves the coupling — no model, random numbers from its ``generator`` only, so it may
run ahead in a worker thread — and :meth:`FlowMatcher.loss` takes the :class:`CoupledBatch` it
returns in place of x1::

    def prepare(batch, generator):          # batch k+1, in the Trainer's worker thread
        return matcher.couple(batch.x1, x0=batch.x0, generator=generator)

    def loss_fn(model, coupled):            # batch k, on the training thread
        return matcher.loss(model, coupled)

    Trainer(net, loss_fn, config, prepare=prepare).fit(batch_fn)

``matcher.loss(model, x1, ...)`` in one call is the same two steps back to back.

Dense data: x1 (B, *), one row a sample. Ragged graph data: x1 (N, D) node rows with ``batch`` (N,);
then the time is drawn per graph, the source may be centred per graph, the coupling acts per graph,
and the loss is a mean over each graph's nodes, then over graphs (every graph weighs the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.couplings import Coupling
from sciflow.paths import AffinePath, PathSample, ProbPath
from sciflow.sources import GaussianSource, Source, as_source

__all__ = [
    "TimeSampler",
    "UniformTime",
    "LogitNormalTime",
    "Source",
    "GaussianSource",
    "TrainingSample",
    "CoupledBatch",
    "FlowMatcher",
    "Target",
    "TARGETS",
    "VelocityModel",
]

Target = Literal["velocity", "x1"]
TARGETS: tuple[Target, ...] = ("velocity", "x1")
"""What the network predicts: the velocity u_t, or the data x1 (converted by the path)."""

VelocityModel = Callable[..., Tensor]
"""Anything called as ``model(x, t, *, cond=None, batch=None) -> Tensor`` shaped like x."""


class TimeSampler(Protocol):
    def __call__(
        self, n: int, *, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
    ) -> Tensor: ...


@dataclass(frozen=True)
class UniformTime:
    """t ~ U[0, 1)."""

    def __call__(
        self, n: int, *, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        return torch.rand(n, generator=generator, device=device, dtype=dtype)


@dataclass(frozen=True)
class LogitNormalTime:
    """t = sigmoid(m + s * n), n ~ N(0, 1) (Esser et al. 2024): more training weight mid-path."""

    mean: float = 0.0
    std: float = 1.0

    def __call__(
        self, n: int, *, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        z = torch.randn(n, generator=generator, device=device, dtype=dtype)
        return torch.sigmoid(self.mean + self.std * z)


@dataclass(frozen=True)
class TrainingSample:
    """Everything one loss evaluation used: the path sample, the per-sample time given to the model
    (per graph for ragged batches), the conditions and the batch vector."""

    path: PathSample
    t_model: Tensor
    cond: Any
    batch: Tensor | None


@dataclass(frozen=True)
class CoupledBatch:
    """The coupling step's result (:meth:`FlowMatcher.couple`): row i of ``x0`` is the source
    paired with row i of ``x1``; ``x1``, ``cond`` and ``batch`` are the inputs, unmoved (couplings
    reorder x0 only), so a mask of x1 still applies. Pass it to :meth:`FlowMatcher.loss` in place
    of x1. Shapes: x0, x1 (N, *); batch (N,) or None."""

    x0: Tensor
    x1: Tensor
    cond: Any = None
    batch: Tensor | None = None


def _check_float(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        kind = f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {kind}")


def _raise_if_nonfinite(**inputs: Tensor) -> None:
    """Name the input that holds NaN/inf (called only once a loss came out non-finite)."""
    for name, x in inputs.items():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            raise ValueError(f"{name} contains NaN or inf values ({int(bad.sum())} entries)")


@dataclass(frozen=True, kw_only=True)
class FlowMatcher:
    """Conditional flow matching, assembled from small parts.

    Parameters
    ----------
    path:
        The probability path, any :class:`~sciflow.paths.ProbPath`;
        :class:`~sciflow.paths.AffinePath` with the linear schedule by default.
    source:
        Where x0 comes from, any :class:`~sciflow.sources.Source` (called with the batch's
        ``cond`` and ``batch``); a standard Gaussian by default.
    coupling:
        How x0 is paired with x1 (:mod:`sciflow.couplings`); ``None`` keeps independent pairs.
    time:
        The time sampler; uniform by default.
    target:
        ``"velocity"`` (the network predicts u_t) or ``"x1"`` (it predicts the data).

    Example
    -------
    >>> from sciflow.nn import MLPVelocity
    >>> fm = FlowMatcher()
    >>> model = MLPVelocity(dim=2, hidden=64, layers=3)
    >>> loss = fm.loss(model, torch.randn(256, 2))
    """

    path: ProbPath = field(default_factory=AffinePath)
    source: Source = field(default_factory=GaussianSource)
    coupling: Coupling | None = None
    time: TimeSampler = field(default_factory=UniformTime)
    target: Target = "velocity"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if not isinstance(self.path, ProbPath):
            raise TypeError(f"path must implement sciflow.paths.ProbPath (sample and the "
                            f"conversions), got {type(self.path).__name__}")
        object.__setattr__(self, "source", as_source(self.source))  # a function is adapted

    def couple(
        self,
        x1: Tensor,
        *,
        cond: Any = None,
        batch: Tensor | None = None,
        x0: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> CoupledBatch:
        """The coupling step: draw x0 from the source (unless given) and pair it with x1.

        It touches no model and draws random numbers from ``generator`` only (the global stream
        when it is None), so with a generator it may run in another thread, ahead of training
        (the :class:`~sciflow.train.Trainer`'s ``prepare`` hook). Shapes as the module docstring.
        """
        _check_float("x1", x1)
        if batch is not None and (batch.dim() != 1 or batch.shape[0] != x1.shape[0]):
            raise ValueError(
                f"batch must be (N,) with one graph index per row of x1 (N={x1.shape[0]}), "
                f"got shape {tuple(batch.shape)}"
            )
        if x0 is None:
            x0 = self.source.sample(x1, cond=cond, batch=batch, generator=generator)
        else:
            _check_float("x0", x0)
            if x0.shape != x1.shape:
                raise ValueError(
                    f"x0 {tuple(x0.shape)} and x1 {tuple(x1.shape)} must have one shape")
        if self.coupling is not None:
            paired = self.coupling(x0, x1, cond=cond, batch=batch, generator=generator)
            x0, x1, cond = paired.x0, paired.x1, paired.cond
        return CoupledBatch(x0=x0, x1=x1, cond=cond, batch=batch)

    def training_sample(
        self,
        x1: Tensor | CoupledBatch,
        *,
        cond: Any = None,
        batch: Tensor | None = None,
        x0: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> TrainingSample:
        """Couple (unless ``x1`` is a :class:`CoupledBatch`), draw t, place x_t on the path."""
        pair = self._coupled(x1, cond=cond, batch=batch, x0=x0, generator=generator)
        x1, batch = pair.x1, pair.batch
        n = graphs.num_graphs(batch, x1.shape[0]) if batch is not None else x1.shape[0]
        t_model = self.time(n, generator=generator, device=x1.device, dtype=x1.dtype)
        t_rows = graphs.expand_per_graph(t_model, batch)
        path = self.path.sample(pair.x0, x1, t_rows, validate=False, generator=generator)
        return TrainingSample(path=path, t_model=t_model, cond=pair.cond, batch=batch)

    def _coupled(self, x1: Tensor | CoupledBatch, *, cond: Any, batch: Tensor | None,
                 x0: Tensor | None, generator: torch.Generator | None) -> CoupledBatch:
        if not isinstance(x1, CoupledBatch):
            return self.couple(x1, cond=cond, batch=batch, x0=x0, generator=generator)
        given = [name for name, v in (("cond", cond), ("batch", batch), ("x0", x0))
                 if v is not None]
        if given:
            raise ValueError(f"x1 is a CoupledBatch, which carries {', '.join(given)} already; "
                             "pass them to FlowMatcher.couple, not again here")
        return x1

    def loss(
        self,
        model: VelocityModel,
        x1: Tensor | CoupledBatch,
        *,
        cond: Any = None,
        batch: Tensor | None = None,
        mask: Tensor | None = None,
        x0: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The flow-matching loss of ``model`` on a batch of data x1 (a scalar tensor).

        ``x1`` is the data (then :meth:`couple` runs first, with ``cond``, ``batch``, ``x0``), or
        the :class:`CoupledBatch` that :meth:`couple` returned (then those stay None).

        ``mask`` (same shape as x1, or (N,) per row) weights entries: 1 keeps, 0 ignores (padded
        atoms, missing pixels). With ``batch`` the per-row errors are averaged per graph first.

        Non-finite data is reported as a ValueError naming x1 or x0; a non-finite loss from finite
        data (a diverging model) is returned as is, for the trainer's NaN guard to stop on. The
        check costs one scalar read-back per call, none when the loss is finite.
        """
        s = self.training_sample(x1, cond=cond, batch=batch, x0=x0, generator=generator)
        pred = model(s.path.x_t, s.t_model, cond=s.cond, batch=s.batch)
        if pred.shape != s.path.x1.shape:
            raise ValueError(
                f"model returned shape {tuple(pred.shape)} but the data has shape "
                f"{tuple(s.path.x1.shape)}; a velocity model must return a tensor shaped like x"
            )
        goal = s.path.u_t if self.target == "velocity" else s.path.x1
        loss = _reduce((pred - goal) ** 2, mask=mask, batch=s.batch)
        if not bool(torch.isfinite(loss)):
            _raise_if_nonfinite(x1=s.path.x1, x0=s.path.x0)
        return loss

    def prediction_to_velocity(self, pred: Tensor, x: Tensor, t: Tensor, *, cond: Any = None,
                               batch: Tensor | None = None) -> Tensor:
        """The velocity of a network output ``pred`` at (x, t): ``pred`` itself for
        ``target="velocity"``, else ``path.x1_to_velocity(pred, x, t[batch], x0_mean=m)`` with m
        the source's mean for ``cond`` (a source with ``mean_of``, e.g. a shifted
        :class:`~sciflow.sources.GaussianSource`; else 0) — finite and exact at t = 1.

        Shapes: pred, x (N, *); t (B,) per sample (per graph with ``batch`` (N,)) -> (N, *).
        """
        if self.target == "velocity":
            return pred
        mean_of = getattr(self.source, "mean_of", None)
        m = mean_of(x, cond=cond) if mean_of is not None else None
        return self.path.x1_to_velocity(pred, x, graphs.expand_per_graph(t, batch), x0_mean=m)

    def velocity(self, model: VelocityModel) -> VelocityModel:
        """The velocity field of a trained model, for the solvers (converts x1 predictions with
        :meth:`prediction_to_velocity`)."""
        if self.target == "velocity":
            return model

        def field_(x: Tensor, t: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor:
            pred = model(x, t, cond=cond, batch=batch)
            return self.prediction_to_velocity(pred, x, t, cond=cond, batch=batch)

        return field_


def _reduce(err: Tensor, *, mask: Tensor | None, batch: Tensor | None) -> Tensor:
    """Mean squared error per row (over masked entries), then per graph, then over the batch."""
    if mask is None and batch is None:
        return err.mean()
    rows = err.reshape(err.shape[0], -1)
    if mask is None:
        per_row = rows.mean(dim=1)
        weight = torch.ones_like(per_row)
    else:
        m = mask.to(err.dtype)
        if m.dim() == 1:
            m = m.reshape(-1, *([1] * (err.dim() - 1))).expand_as(err)
        if m.shape != err.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} fits neither the data {tuple(err.shape)} "
                             "nor one value per row")
        m = m.reshape(err.shape[0], -1)
        count = m.sum(dim=1)
        per_row = (rows * m).sum(dim=1) / count.clamp_min(1)
        weight = (count > 0).to(err.dtype)
    if batch is None:
        return (per_row * weight).sum() / weight.sum().clamp_min(1)
    per_graph = graphs.graph_sum(per_row * weight, batch) / graphs.graph_sum(weight, batch).clamp_min(1)
    return per_graph[graphs.graph_sum(weight, batch) > 0].mean()

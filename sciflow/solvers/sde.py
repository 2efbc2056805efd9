"""Stochastic sampling with the flow's marginals: one Euler-Maruyama step and its sampler."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.paths import AffinePath, ProbPath, guarded_divide
from sciflow.solvers.loop import Field, Interval, StepHook, time_loop, uniform_grid
from sciflow.solvers.ode import _bind, _check_start

__all__ = ["SDEStep", "sde_sample"]


@dataclass(frozen=True, kw_only=True)
class SDEStep:
    """One Euler-Maruyama step of the SDE with the flow's marginals: the single implementation
    behind :func:`sde_sample` and the particle searches of :mod:`sciflow.particles`.

    For a source x0 = m + s z (z ~ N(0, I); ``source_mean`` m, ``source_scale`` s) the score of
    p_t is -(x0_hat - m) / (s^2 sigma_t), x0_hat = path.velocity_to_x0(v, x, t). The stochastic
    interpolant sampler dX = (v + eps' score) dt + sqrt(2 eps') dW keeps the marginals for any
    eps' >= 0 (Albergo et al. 2023, "Stochastic interpolants"); sciflow takes eps' = s^2 eps_t, so
    ``diffusion`` means the same relative noise for any source scale:

        x_{t+dt} = x + dt (v - eps_t (x0_hat - m) / sigma_t) + s sqrt(2 eps_t dt) z

    With m = 0, s = 1 this is x + dt (v + eps_t score) + sqrt(2 eps_t dt) z. The division by
    sigma_t is the path's guarded one (:func:`sciflow.paths.guarded_divide`), finite at t = 1.

    Parameters
    ----------
    path:
        The path the model was trained on (x0_hat and sigma_t come from it); linear by default.
    diffusion:
        eps_t: a constant c means eps_t = c (1 - t), noise vanishing at the data end where the score
        of a linear path is singular; a callable gives eps_t itself; 0 gives the Euler ODE.
    center_noise:
        Remove each graph's mean from the noise (zero-centre-of-mass point clouds).
    source_scale:
        s > 0.
    source_mean:
        m: None (zero), a tensor broadcastable to x, or a function of the conditions returning
        per-row means (what the particle searches need: they tile and resample ``cond``).

    Notes
    -----
    :meth:`for_source` reads s, m and the centring from a :class:`~sciflow.sources.GaussianSource`.
    Shapes: v, x (N, *) -> (N, *); ``batch`` (N,) for ragged graph batches.
    """

    path: ProbPath = field(default_factory=AffinePath)
    diffusion: float | Callable[[float], float] = 1.0
    center_noise: bool = False
    source_scale: float = 1.0
    source_mean: Tensor | Callable[[Any], Tensor] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source_scale, (int, float)) or not self.source_scale > 0:
            raise ValueError(f"source_scale must be a number > 0, got {self.source_scale!r}")
        if not callable(self.diffusion) and not float(self.diffusion) >= 0:
            raise ValueError(f"diffusion must be >= 0 (or a callable t -> eps_t), got "
                             f"{self.diffusion!r}")
        if self.source_mean is not None and not (isinstance(self.source_mean, Tensor)
                                                 or callable(self.source_mean)):
            raise TypeError(f"source_mean must be None, a tensor or a function of cond, got "
                            f"{type(self.source_mean).__name__}")

    @classmethod
    def for_source(cls, source: Any, **options: Any) -> SDEStep:
        """The step for a Gaussian source (``scale``, ``mean``, ``center_graphs``, as
        :class:`~sciflow.sources.GaussianSource` has them); ``options`` set the other fields."""
        return cls(source_scale=float(source.scale), source_mean=getattr(source, "mean", None),
                   center_noise=bool(getattr(source, "center_graphs", False)), **options)

    def eps(self, t: float) -> float:
        """eps_t, checked to be >= 0."""
        e = float(self.diffusion(t)) if callable(self.diffusion) else float(self.diffusion) * (1.0 - t)
        if not e >= 0:
            raise ValueError(f"diffusion must be >= 0, got {e} at t={t}")
        return e

    def __call__(self, v: Tensor, x: Tensor, t: float, dt: float, *, batch: Tensor | None = None,
                 last: bool = False, cond: Any = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """x_{t+dt} from x_t and its velocity v; ``last`` makes the step deterministic."""
        e = self.eps(t)
        if last or e == 0.0:
            return x + dt * v
        n = graphs.num_graphs(batch, x.shape[0]) if batch is not None else x.shape[0]
        t_rows = graphs.expand_per_graph(torch.full((n,), t, dtype=x.dtype, device=x.device), batch)
        x0_hat = self.path.velocity_to_x0(v, x, t_rows)
        if self.source_mean is not None:
            m = self.source_mean(cond) if callable(self.source_mean) else self.source_mean
            try:
                x0_hat = x0_hat - m.to(dtype=x.dtype, device=x.device)
            except RuntimeError as err:
                raise ValueError(f"source_mean of shape {tuple(m.shape)} does not broadcast "
                                 f"against the state of shape {tuple(x.shape)}") from err
        sigma_t = self.path.coefficients(t_rows, x).sigma
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        if self.center_noise:
            z = graphs.center(z, batch)
        drift = v - guarded_divide(e * x0_hat, sigma_t, self.path.eps)
        return x + dt * drift + self.source_scale * math.sqrt(2.0 * e * dt) * z

    def advance(self, f: Field, *, cond: Any = None, batch: Tensor | None = None,
                generator: torch.Generator | None = None) -> Callable[[Tensor, Interval], Tensor]:
        """The :func:`time_loop` advance of this SDE for a bound field f(x, t): one velocity
        evaluation and one step per interval, deterministic on the last."""

        def step(x: Tensor, s: Interval) -> Tensor:
            return self(f(x, s.t), x, s.t, s.dt, batch=batch, last=s.last, cond=cond,
                        generator=generator)

        return step


def sde_sample(
    model: Callable[..., Tensor],
    x0: Tensor,
    *,
    path: ProbPath | None = None,
    steps: int,
    diffusion: float | Callable[[float], float] = 1.0,
    source_scale: float = 1.0,
    source_mean: Tensor | Callable[[Any], Tensor] | None = None,
    cond: Any = None,
    batch: Tensor | None = None,
    center_noise: bool = False,
    generator: torch.Generator | None = None,
    hooks: Sequence[StepHook] = (),
) -> Tensor:
    """Sample with the SDE that has the flow's marginals, using the score implied by the velocity.

    dX = [v(X, t) + eps_t s^2 score(X, t)] dt + s sqrt(2 eps_t) dW, for a source
    x0 ~ N(m, s^2 I) (``source_mean`` m, ``source_scale`` s; defaults N(0, I)); each step is
    :class:`SDEStep` (equations there; Albergo et al. 2023): for any eps_t >= 0 the marginals
    match the ODE's. ``diffusion`` is eps_t: a constant is multiplied by (1 - t) so the noise
    vanishes at the data end; pass a callable for your own schedule. Euler-Maruyama on
    :func:`uniform_grid` (0, 1, steps); the last step adds no noise. ``center_noise`` removes each
    graph's mean from the noise (zero-centre-of-mass point clouds). ``path`` defaults to the
    linear path; ``hooks`` run after every step as in :func:`odeint`.

    Shapes: x0 (N, *) -> (N, *); ``batch`` (N,) for ragged graph batches.
    """
    _check_start(x0, 0.0, 1.0)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    step = SDEStep(path=path if path is not None else AffinePath(), diffusion=diffusion,
                   center_noise=center_noise, source_scale=source_scale, source_mean=source_mean)
    f, _ = _bind(model, x0, cond, batch)
    advance = step.advance(f, cond=cond, batch=batch, generator=generator)
    return time_loop(advance, x0, uniform_grid(0.0, 1.0, steps), hooks=hooks)

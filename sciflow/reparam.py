"""Change the schedule of a trained affine-path model without retraining.

A model trained on x_t = a_t x1 + s_t x0 (the linear path a_t = t, s_t = 1 - t by default) has the
same conditional Gaussians, up to a scale, as any other affine schedule x_r = A_r x1 + S_r x0 at
equal signal-to-noise ratio. With

    t(r):  a_t / s_t = A_r / S_r          (same SNR)
    c(r) = A_r / a_t = S_r / s_t = (A_r + S_r) / (a_t + s_t)

the new path is x_r = c(r) x_{t(r)}, and differentiating in r gives the transformed velocity

    V(x, r) = (c'(r) / c(r)) x + c(r) t'(r) v(x / c(r), t(r)),

    t'(r) = (dA/dr S_r - A_r dS/dr) / (c^2 (da/dt s_t - a_t ds/dt))
    c'/c  = (dA/dr + dS/dr) / (A_r + S_r) - t'(r) (da/dt + ds/dt) / (a_t + s_t).

The ODE of V run from r = 0 to 1 is the original ODE seen through the change of variables, so with
exact integration its end samples are the original's (Lipman et al. 2024, "Flow Matching Guide and
Code", the scheduler change of a trained model; Kim et al. 2025, "Inference-time scaling for flow
models via stochastic generation and rollover budget forcing", who turn a linear-path model into a
variance-preserving interpolant this way before stochastic sampling). What changes is the time grid
a fixed-step solver sees and the diffusion a stochastic sampler may add.

The SNR a_t / s_t must increase strictly with t for both schedules (all of :mod:`sciflow.paths`'s
schedulers do). ``t`` is per sample (per graph for ragged batches) as everywhere in sciflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sciflow import graphs
from sciflow.paths import CondOTScheduler, CosineScheduler, Scheduler, broadcast_time

__all__ = ["TimeScale", "schedule_change", "ScheduleTransformedVelocity", "to_vp"]


@dataclass(frozen=True)
class TimeScale:
    """The change of variables at new times r, each field shaped (B,) like r.

    t: the original time t(r); scale: c(r); dt_dr: t'(r); dlogc_dr: c'(r) / c(r).
    """

    t: Tensor
    scale: Tensor
    dt_dr: Tensor
    dlogc_dr: Tensor


def _as_tensor(value: Tensor | float, like: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand_as(like)


def _invert_snr(source: Scheduler, a_new: Tensor, s_new: Tensor, iterations: int) -> Tensor:
    """Solve a_t S_r - s_t A_r = 0 for t in [0, 1] by bisection (monotone SNR assumed)."""
    lo = torch.zeros_like(a_new)
    hi = torch.ones_like(a_new)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        c = source(mid)
        above = c.alpha * s_new - c.sigma * a_new > 0  # SNR(mid) too high: t lies below mid
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    return 0.5 * (lo + hi)


def schedule_change(
    r: Tensor, *, source: Scheduler, target: Scheduler, bisection_steps: int = 60
) -> TimeScale:
    """t(r), c(r) and their derivatives for moving a ``source``-schedule model to ``target``.

    Closed form when ``source`` is the linear schedule (t = A_r / (A_r + S_r), c = A_r + S_r);
    otherwise t(r) by bisection on the SNR in float64.

    Shapes: r (B,) in [0, 1] -> every field of :class:`TimeScale` (B,), dtype of r.
    """
    if not isinstance(r, Tensor) or not r.is_floating_point() or r.dim() != 1:
        raise ValueError(f"r must be a 1-D floating-point tensor of times, got {r!r}")
    if r.numel() and bool(((r < 0) | (r > 1) | torch.isnan(r)).any()):
        raise ValueError(f"r must lie in [0, 1], got values from {float(r.min())} to {float(r.max())}")
    rr = r.to(torch.float64)
    new = target(rr)
    a_new, s_new = new.alpha, new.sigma
    da_new, ds_new = _as_tensor(new.d_alpha, rr), _as_tensor(new.d_sigma, rr)
    if isinstance(source, CondOTScheduler):
        t = a_new / (a_new + s_new)
    else:
        t = _invert_snr(source, a_new, s_new, bisection_steps)
    old = source(t)
    a_old, s_old = old.alpha, old.sigma
    da_old, ds_old = _as_tensor(old.d_alpha, t), _as_tensor(old.d_sigma, t)
    scale = (a_new + s_new) / (a_old + s_old)
    # d/dr of the SNR A/S equals t' times d/dt of a/s; multiplying both by S^2 = c^2 s^2 removes
    # the division by S_r, which vanishes at the data end.
    dt_dr = (da_new * s_new - a_new * ds_new) / (scale**2 * (da_old * s_old - a_old * ds_old))
    dlogc = (da_new + ds_new) / (a_new + s_new) - dt_dr * (da_old + ds_old) / (a_old + s_old)
    return TimeScale(t=t.to(r.dtype), scale=scale.to(r.dtype), dt_dr=dt_dr.to(r.dtype),
                     dlogc_dr=dlogc.to(r.dtype))


class ScheduleTransformedVelocity(nn.Module):
    """A trained velocity model seen on another schedule: ``V(x, r)`` of the module docstring.

    Follows the velocity contract ``model(x, r, *, cond=None, batch=None)`` with r per sample (per
    graph), so every sciflow solver, :func:`~sciflow.solvers.sde_sample` (with
    ``path=AffinePath(target)``), the particle samplers and steering take it as they are.

    Parameters
    ----------
    model:
        The trained velocity field, on the ``source`` schedule.
    source, target:
        Schedulers from :mod:`sciflow.paths`; ``source`` defaults to the linear path, ``target`` to
        the trigonometric variance-preserving one (alpha = sin(pi r/2), sigma = cos(pi r/2)).

    Example
    -------
    >>> from sciflow.solvers import odeint
    >>> vp = ScheduleTransformedVelocity(model)                      # doctest: +SKIP
    >>> odeint(vp, x0, method="euler", steps=8).x                    # doctest: +SKIP
    """

    def __init__(self, model: nn.Module | Any, *, source: Scheduler | None = None,
                 target: Scheduler | None = None) -> None:
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be a velocity field model(x, t, *, cond, batch), got "
                            f"{type(model).__name__}")
        self.model = model
        self.source: Scheduler = source if source is not None else CondOTScheduler()
        self.target: Scheduler = target if target is not None else CosineScheduler()

    def time_scale(self, r: Tensor) -> TimeScale:
        """:func:`schedule_change` for this pair of schedules."""
        return schedule_change(r, source=self.source, target=self.target)

    def forward(self, x: Tensor, r: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor:
        """V(x, r) = (c'/c) x + c t' v(x / c, t(r)).  Shapes: x (N, *), r (B,) -> (N, *)."""
        ts = self.time_scale(r)
        scale = broadcast_time(graphs.expand_per_graph(ts.scale, batch), x)
        v = self.model(x / scale, ts.t, cond=cond, batch=batch)
        rate = broadcast_time(graphs.expand_per_graph(ts.dlogc_dr, batch), x)
        speed = broadcast_time(graphs.expand_per_graph(ts.scale * ts.dt_dr, batch), x)
        return rate * x + speed * v


def to_vp(model: nn.Module | Any, *, source: Scheduler | None = None) -> ScheduleTransformedVelocity:
    """The variance-preserving (trigonometric) view of a linear-path model, without retraining."""
    return ScheduleTransformedVelocity(model, source=source, target=CosineScheduler())

"""Probability paths: schedulers, the affine path, the stochastic interpolant, and conversions.

Convention (used throughout sciflow): t = 0 is the source (noise), t = 1 is the data, and

    x_t = alpha_t * x1 + sigma_t * x0,          u_t = dx_t/dt = alpha'_t * x1 + sigma'_t * x0

(Lipman et al. 2023, "Flow Matching for Generative Modeling"; Liu et al. 2023, "Rectified Flow").
The stochastic interpolant adds gamma_t * z with z ~ N(0, I) (Albergo & Vanden-Eijnden 2023).

Every path implements :class:`ProbPath`: ``sample`` draws x_t and its target velocity, and the
conversions between the four parametrisations of one field — velocity v, data estimate x1_hat,
noise estimate x0_hat and score — live on the path that defines them, so a matcher, a solver or a
domain never writes its own.

Near the ends of [0, 1] the conversions divide by coefficients that vanish (sigma_1 = 0, alpha_0 =
0 for most schedules). They are made finite once, here, by :func:`guarded_divide` with the path's
``eps`` (default :data:`ENDPOINT_EPS`): the exact quotient wherever the divisor is at least eps,
going to zero with the divisor below it. Scheduler derivatives that diverge at an end (VP's
sigma'_1, the Brownian gamma'_t at 0 and 1, a polynomial alpha'_0 with exponent < 1) are capped by
flooring their divisor at the same eps.

``t`` is one value per row of ``x`` (shape (N,)); for ragged graph batches pass ``t[batch]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "ENDPOINT_EPS",
    "guarded_divide",
    "SchedulerOutput",
    "Scheduler",
    "CondOTScheduler",
    "CosineScheduler",
    "VPScheduler",
    "PolynomialScheduler",
    "SCHEDULERS",
    "PathSample",
    "ProbPath",
    "AffinePath",
    "Gamma",
    "BrownianGamma",
    "StochasticInterpolant",
    "PATHS",
    "broadcast_time",
]

ENDPOINT_EPS = 1e-3
"""Where a conversion's divisor falls below this (|sigma_t|, |alpha_t| or the path's Wronskian),
:func:`guarded_divide` takes over. 1e-3 keeps every fixed grid of fewer than ~1,000 steps exact
(its last interior time has sigma >= 1e-3) and caps the amplification of a network's error at 1e3."""


def guarded_divide(num: Tensor, den: Tensor | float, eps: float = ENDPOINT_EPS) -> Tensor:
    """num / den made finite where den vanishes:

        num / den            if |den| >= eps
        num * den / eps^2    if |den| <  eps

    Exact wherever the divisor is at least eps; continuous at |den| = eps; zero at den = 0, where
    the estimate it computes carries no information about the quantity divided out (at t = 1 the
    state is the data, and a noise estimate falls back to the mean 0 of a centred source); never
    more than 1/eps times num. Gradients are finite everywhere (no inf enters either branch).

    Shapes: num (N, *), den broadcastable to it -> (N, *).
    """
    d = torch.as_tensor(den, dtype=num.dtype, device=num.device)
    small = d.abs() < eps
    safe = torch.where(small, torch.ones_like(d), d)
    return torch.where(small, num * (d / eps**2), num / safe)


def _floored(den: Tensor, eps: float = ENDPOINT_EPS) -> Tensor:
    """A non-negative divisor floored at eps: the cap on a scheduler derivative that diverges."""
    return den.clamp_min(eps)


@dataclass(frozen=True)
class SchedulerOutput:
    """alpha_t, sigma_t and their time derivatives, each shaped like the ``t`` given (a constant
    derivative may be a Python float, which broadcasts the same way)."""

    alpha: Tensor
    sigma: Tensor
    d_alpha: Tensor | float
    d_sigma: Tensor | float


class Scheduler(Protocol):
    """Maps t in [0, 1] to the coefficients of x_t = alpha_t x1 + sigma_t x0."""

    def __call__(self, t: Tensor) -> SchedulerOutput: ...


@dataclass(frozen=True)
class CondOTScheduler:
    """The linear (conditional optimal-transport) schedule: alpha_t = t, sigma_t = 1 - t."""

    def __call__(self, t: Tensor) -> SchedulerOutput:
        return SchedulerOutput(alpha=t, sigma=1 - t, d_alpha=1.0, d_sigma=-1.0)



@dataclass(frozen=True)
class CosineScheduler:
    """The trigonometric variance-preserving schedule: alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2).

    alpha_t^2 + sigma_t^2 = 1 for every t (the "VP (trig)" path of torchcfm and the stochastic
    interpolants paper).
    """

    def __call__(self, t: Tensor) -> SchedulerOutput:
        half_pi = 0.5 * math.pi
        return SchedulerOutput(
            alpha=torch.sin(half_pi * t),
            sigma=torch.cos(half_pi * t),
            d_alpha=half_pi * torch.cos(half_pi * t),
            d_sigma=-half_pi * torch.sin(half_pi * t),
        )



@dataclass(frozen=True)
class VPScheduler:
    """The variance-preserving schedule of score-based SDEs (Song et al. 2021) in flow time.

    With s = 1 - t and T(s) = beta_min s + (beta_max - beta_min) s^2 / 2:
        alpha_t = exp(-T(s) / 2),   sigma_t = sqrt(1 - alpha_t^2),   sigma'_t = -alpha_t alpha'_t / sigma_t.
    alpha_1 = 1, sigma_1 = 0; at t = 0, alpha_0 = exp(-(beta_min + beta_max) / 4) (about 0.006 for
    the defaults), so the source is nearly, not exactly, pure noise. sigma'_t diverges like
    (1 - t)^(-1/2) at t = 1; its divisor sigma_t is floored at :data:`ENDPOINT_EPS`, which caps
    |sigma'_t| at alpha'_1 / eps = beta_min / (2 eps) for 1 - t below ~eps^2 / beta_min.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __call__(self, t: Tensor) -> SchedulerOutput:
        s = 1 - t
        big_t = self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2
        d_big_t_ds = self.beta_min + (self.beta_max - self.beta_min) * s
        alpha = torch.exp(-0.5 * big_t)
        sigma = torch.sqrt(1 - alpha**2)
        d_alpha = 0.5 * alpha * d_big_t_ds  # d/dt = -d/ds
        d_sigma = -alpha * d_alpha / _floored(sigma)
        return SchedulerOutput(alpha=alpha, sigma=sigma, d_alpha=d_alpha, d_sigma=d_sigma)



@dataclass(frozen=True)
class PolynomialScheduler:
    """alpha_t = t^n, sigma_t = 1 - t^n (Meta flow_matching's polynomial convex schedule).

    For n < 1, alpha'_t = n t^(n-1) diverges at t = 0; t is floored at :data:`ENDPOINT_EPS`
    inside that power (only for n < 1), which caps it at n eps^(n-1).
    """

    exponent: float = 2.0

    def __post_init__(self) -> None:
        if not self.exponent > 0:
            raise ValueError(f"PolynomialScheduler exponent must be positive, got {self.exponent}")

    def __call__(self, t: Tensor) -> SchedulerOutput:
        n = self.exponent
        alpha = t**n
        d_alpha = n * (t if n >= 1 else _floored(t)) ** (n - 1)
        return SchedulerOutput(alpha=alpha, sigma=1 - alpha, d_alpha=d_alpha, d_sigma=-d_alpha)



SCHEDULERS: dict[str, type] = {
    "linear": CondOTScheduler,
    "condot": CondOTScheduler,
    "cosine": CosineScheduler,
    "vp": VPScheduler,
    "polynomial": PolynomialScheduler,
}
"""Schedulers by name (``"linear"`` and ``"condot"`` name the same one); each builds with defaults."""


@dataclass(frozen=True)
class PathSample:
    """A point on a path and its target velocity. x_t and u_t are shaped like x1; t is (N,);
    z is the interpolant's extra noise (None on an affine path)."""

    x0: Tensor
    x1: Tensor
    t: Tensor
    x_t: Tensor
    u_t: Tensor
    z: Tensor | None = None


def broadcast_time(t: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-row time (N,) to (N, 1, ..., 1) so it broadcasts against x (N, *)."""
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(
            f"t must have one value per row of x: got t of shape {tuple(t.shape)} for x of shape "
            f"{tuple(x.shape)}; for graph batches pass t[batch]"
        )
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def _check_pair(x0: Tensor, x1: Tensor, t: Tensor) -> None:
    if x0.shape != x1.shape:
        raise ValueError(
            f"source and target must have the same shape, got x0 {tuple(x0.shape)} and "
            f"x1 {tuple(x1.shape)}"
        )
    if not (x0.is_floating_point() and x1.is_floating_point() and t.is_floating_point()):
        raise TypeError(
            f"x0, x1 and t must be floating point, got {x0.dtype}, {x1.dtype} and {t.dtype}"
        )
    if t.numel() and bool(((t < 0) | (t > 1) | torch.isnan(t)).any()):
        bad = t[(t < 0) | (t > 1) | torch.isnan(t)][0].item()
        raise ValueError(f"t must lie in [0, 1] (t=0 source, t=1 data), got {bad}")


@runtime_checkable
class ProbPath(Protocol):
    """What :class:`~sciflow.matcher.FlowMatcher`, the solvers, steering and the particle
    searches need from a probability path.

    ``coefficients`` are those of the path's Gaussian marginal x_t = alpha_t x1 + sigma_t x0 for a
    standard Gaussian x0 (for an interpolant with extra noise, its effective sigma_t); every
    conversion is affine in (v, x) with them. Each conversion maps (estimate, x_t, t) -> the other
    estimate, with x_t (N, *) and t (N,) per row; all are finite at t = 0 and t = 1 (``eps``).
    The two that recover the noise from a data estimate take the source's mean ``x0_mean`` for a
    shifted source N(m, s^2 I): it is what they return where sigma_t vanishes.
    """

    eps: float

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, validate: bool = True,
               generator: torch.Generator | None = None) -> PathSample: ...

    def coefficients(self, t: Tensor, like: Tensor) -> SchedulerOutput: ...

    def velocity_to_x1(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor: ...

    def velocity_to_x0(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor: ...

    def velocity_to_score(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor: ...

    def x1_to_velocity(self, x1: Tensor, x: Tensor, t: Tensor, *,
                       x0_mean: Tensor | None = None) -> Tensor: ...

    def x0_to_velocity(self, x0: Tensor, x: Tensor, t: Tensor) -> Tensor: ...

    def score_to_velocity(self, score: Tensor, x: Tensor, t: Tensor) -> Tensor: ...

    def x1_to_x0(self, x1: Tensor, x: Tensor, t: Tensor, *,
                 x0_mean: Tensor | None = None) -> Tensor: ...

    def x0_to_x1(self, x0: Tensor, x: Tensor, t: Tensor) -> Tensor: ...


class AffinePath:
    """The affine conditional path x_t = alpha_t x1 + sigma_t x0 for a given scheduler.

    Parameters
    ----------
    scheduler:
        alpha_t and sigma_t; the linear (CondOT) schedule by default.
    eps:
        Where the conversions' divisors fall below eps they switch to :func:`guarded_divide`'s
        regularised quotient (:data:`ENDPOINT_EPS` by default).

    Example
    -------
    >>> path = AffinePath(CondOTScheduler())
    >>> x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    >>> s = path.sample(x0, x1, torch.rand(4))
    >>> torch.allclose(s.u_t, x1 - x0)
    True
    """

    def __init__(self, scheduler: Scheduler | None = None, *, eps: float = ENDPOINT_EPS) -> None:
        if not 0 < eps < 0.5:
            raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
        self.scheduler: Scheduler = scheduler if scheduler is not None else CondOTScheduler()
        self.eps = float(eps)

    def __repr__(self) -> str:
        return f"AffinePath({self.scheduler!r})"

    def coefficients(self, t: Tensor, like: Tensor) -> SchedulerOutput:
        """Scheduler coefficients for a per-row t, broadcast against ``like`` (N, *)."""
        return self.scheduler(broadcast_time(t, like).to(like.dtype))

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, validate: bool = True,
               generator: torch.Generator | None = None) -> PathSample:
        """Draw x_t between x0 and x1 and its target velocity.

        x_t = alpha_t x1 + sigma_t x0,   u_t = alpha'_t x1 + sigma'_t x0

        Shapes: x0, x1: (N, *); t: (N,) -> x_t, u_t: (N, *). ``validate=False`` skips the checks
        of shapes, dtypes and the range of t (for callers that drew t themselves, in hot loops).
        ``generator`` is unused (the affine path draws nothing); it is part of :class:`ProbPath`.
        """
        if validate:
            _check_pair(x0, x1, t)
        if isinstance(self.scheduler, CondOTScheduler):
            # the most used path, in two tensor ops instead of six: it is a training hot spot
            x_t = torch.lerp(x0, x1, broadcast_time(t, x1).to(x1.dtype))
            return PathSample(x0=x0, x1=x1, t=t, x_t=x_t, u_t=x1 - x0)
        c = self.scheduler(broadcast_time(t, x1).to(x1.dtype))
        return PathSample(
            x0=x0,
            x1=x1,
            t=t,
            x_t=c.alpha * x1 + c.sigma * x0,
            u_t=c.d_alpha * x1 + c.d_sigma * x0,
        )

    # --- conversions between parametrisations; x is x_t, t is per-row (N,) ---------------------
    # W_t = alpha'_t sigma_t - sigma'_t alpha_t (> 0 when the SNR increases) is the determinant of
    # the map (x0, x1) -> (x_t, u_t); every division below goes through guarded_divide.

    def _div(self, num: Tensor, den: Tensor | float) -> Tensor:
        return guarded_divide(num, den, self.eps)

    def velocity_to_x1(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """x1_hat = (sigma_t v - sigma'_t x) / W_t."""
        c = self.coefficients(t, x)
        return self._div(c.sigma * v - c.d_sigma * x, c.d_alpha * c.sigma - c.d_sigma * c.alpha)

    def velocity_to_x0(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """x0_hat (the noise estimate) = (alpha'_t x - alpha_t v) / W_t."""
        c = self.coefficients(t, x)
        return self._div(c.d_alpha * x - c.alpha * v, c.d_alpha * c.sigma - c.d_sigma * c.alpha)

    def velocity_to_score(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """Score of p_t for a standard Gaussian source: s = -x0_hat / sigma_t.

        Equivalently s = (alpha_t v - alpha'_t x) / (sigma_t W_t); for the linear path
        s = (t v - x) / (1 - t). At t = 1 the score of the data is unbounded; the guarded division
        returns 0 there.
        """
        c = self.coefficients(t, x)
        return self._div(-self.velocity_to_x0(v, x, t), c.sigma)

    def x1_to_velocity(self, x1: Tensor, x: Tensor, t: Tensor, *,
                       x0_mean: Tensor | None = None) -> Tensor:
        """v = alpha'_t x1 + sigma'_t x0_hat,  x0_hat = (x - alpha_t x1) / sigma_t.

        The call that turns a network's data prediction into the velocity a solver integrates.
        At t = 1 (sigma = 0) x_t is the data and carries no information about x0: the guarded
        division makes x0_hat fall back to the source's mean m (``x0_mean``, broadcastable to x;
        0 when None), written m + (x - alpha_t x1 - sigma_t m) / sigma_t, which is the same
        estimate wherever sigma_t >= eps. So v(x, 1) = alpha'_1 x1 + sigma'_1 m, the exact end
        velocity of an exact model (x - m on the linear path), for every solver that evaluates
        the end point.
        """
        c = self.coefficients(t, x)
        if x0_mean is None:
            return c.d_alpha * x1 + self._div(c.d_sigma * (x - c.alpha * x1), c.sigma)
        m = x0_mean.to(dtype=x.dtype, device=x.device)
        return (c.d_alpha * x1 + c.d_sigma * m
                + self._div(c.d_sigma * (x - c.alpha * x1 - c.sigma * m), c.sigma))

    def x0_to_velocity(self, x0: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """v = alpha'_t (x - sigma_t x0) / alpha_t + sigma'_t x0 (guarded where alpha_t -> 0)."""
        c = self.coefficients(t, x)
        return self._div(c.d_alpha * (x - c.sigma * x0), c.alpha) + c.d_sigma * x0

    def score_to_velocity(self, score: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """Inverse of :meth:`velocity_to_score` (standard Gaussian source): x0_hat = -sigma_t s."""
        c = self.coefficients(t, x)
        return self.x0_to_velocity(-c.sigma * score, x, t)

    def x1_to_x0(self, x1: Tensor, x: Tensor, t: Tensor, *,
                 x0_mean: Tensor | None = None) -> Tensor:
        """x0_hat = (x - alpha_t x1) / sigma_t, falling back to ``x0_mean`` (0 when None) where
        sigma_t -> 0, as in :meth:`x1_to_velocity`."""
        c = self.coefficients(t, x)
        if x0_mean is None:
            return self._div(x - c.alpha * x1, c.sigma)
        m = x0_mean.to(dtype=x.dtype, device=x.device)
        return m + self._div(x - c.alpha * x1 - c.sigma * m, c.sigma)

    def x0_to_x1(self, x0: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """x1_hat = (x - sigma_t x0) / alpha_t (guarded where alpha_t -> 0)."""
        c = self.coefficients(t, x)
        return self._div(x - c.sigma * x0, c.alpha)


class Gamma(Protocol):
    """The extra noise scale of a stochastic interpolant: gamma_t and gamma'_t, and gamma_t^2 with
    its derivative (finite where gamma'_t is not)."""

    def __call__(self, t: Tensor) -> tuple[Tensor, Tensor]: ...

    def squared(self, t: Tensor) -> tuple[Tensor, Tensor]: ...


@dataclass(frozen=True)
class BrownianGamma:
    """gamma_t = sqrt(scale * t (1 - t)): the Brownian-bridge noise of stochastic interpolants.

    Vanishes at both ends, so the interpolant still joins x0 and x1 exactly. gamma'_t =
    scale (1 - 2t) / (2 gamma_t) diverges at t = 0 and t = 1; its divisor is floored at
    :data:`ENDPOINT_EPS`, capping |gamma'_t| at scale / (2 eps) within t (1 - t) < eps^2 / scale
    of the ends (where its coefficient z is multiplied by a vanishing gamma_t in x_t anyway).
    """

    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.scale >= 0:
            raise ValueError(f"BrownianGamma scale must be >= 0 (0 is the affine path), got "
                             f"{self.scale}")

    def __call__(self, t: Tensor) -> tuple[Tensor, Tensor]:
        g = torch.sqrt(self.scale * t * (1 - t))
        dg = self.scale * (1 - 2 * t) / (2 * _floored(g))
        return g, dg

    def squared(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """gamma_t^2 = scale t (1 - t) and its derivative scale (1 - 2t), finite everywhere."""
        return self.scale * t * (1 - t), self.scale * (1 - 2 * t)


class StochasticInterpolant(AffinePath):
    """x_t = alpha_t x1 + sigma_t x0 + gamma_t z, z ~ N(0, I) (Albergo, Boffi & Vanden-Eijnden 2023).

    The target of the velocity regression is the conditional drift
    u_t = alpha'_t x1 + sigma'_t x0 + gamma'_t z. With gamma = 0 this is the affine path.

    Conversions: for a standard Gaussian x0 independent of z, sigma_t x0 + gamma_t z is one
    Gaussian of scale s_t = sqrt(sigma_t^2 + gamma_t^2), and E[u_t | x_t] equals the affine drift
    with (alpha_t, s_t): E[sigma'_t x0 + gamma'_t z | x_t] = s'_t E[(sigma_t x0 + gamma_t z) / s_t
    | x_t], s'_t = (sigma_t sigma'_t + gamma_t gamma'_t) / s_t. So :meth:`coefficients` returns
    (alpha_t, s_t, alpha'_t, s'_t), and every conversion of :class:`AffinePath` holds exactly with
    them (x0_hat then estimates the combined noise in units of s_t). s'_t's divisor s_t is floored
    at ``eps`` (it vanishes at t = 1).
    """

    def __init__(self, scheduler: Scheduler | None = None, gamma: Gamma | None = None, *,
                 eps: float = ENDPOINT_EPS) -> None:
        super().__init__(scheduler, eps=eps)
        self.gamma: Gamma = gamma if gamma is not None else BrownianGamma()

    def __repr__(self) -> str:
        return f"StochasticInterpolant({self.scheduler!r}, {self.gamma!r})"

    def coefficients(self, t: Tensor, like: Tensor) -> SchedulerOutput:
        """(alpha_t, s_t, alpha'_t, s'_t) of the Gaussian marginal (class docstring)."""
        tt = broadcast_time(t, like).to(like.dtype)
        c = self.scheduler(tt)
        g2, dg2 = self.gamma.squared(tt)
        s = torch.sqrt(c.sigma**2 + g2)
        ds = (c.sigma * c.d_sigma + 0.5 * dg2) / s.clamp_min(self.eps)
        return SchedulerOutput(alpha=c.alpha, sigma=s, d_alpha=c.d_alpha, d_sigma=ds)

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, validate: bool = True,
               generator: torch.Generator | None = None, z: Tensor | None = None) -> PathSample:
        """Draw x_t with its conditional drift; z ~ N(0, I) from ``generator`` unless given.

        Shapes: x0, x1, z: (N, *); t: (N,).
        """
        base = super().sample(x0, x1, t, validate=validate)
        if z is None:
            z = torch.randn(x1.shape, generator=generator, dtype=x1.dtype, device=x1.device)
        elif z.shape != x1.shape:
            raise ValueError(f"z must be shaped like x1 {tuple(x1.shape)}, got {tuple(z.shape)}")
        g, dg = self.gamma(broadcast_time(t, x1).to(x1.dtype))
        return PathSample(
            x0=x0, x1=x1, t=t, x_t=base.x_t + g * z, u_t=base.u_t + dg * z, z=z
        )


PATHS: dict[str, type] = {"affine": AffinePath, "stochastic_interpolant": StochasticInterpolant}
"""Path families by name; each is built as ``PATHS[name](scheduler)`` for any scheduler."""

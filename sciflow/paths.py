"""Probability paths: schedulers, the affine path, the stochastic interpolant, and conversions.

Convention (used throughout sciflow): t = 0 is the source (noise), t = 1 is the data, and

    x_t = alpha_t * x1 + sigma_t * x0,          u_t = dx_t/dt = alpha'_t * x1 + sigma'_t * x0

(Lipman et al. 2023, "Flow Matching for Generative Modeling"; Liu et al. 2023, "Rectified Flow").
The stochastic interpolant adds gamma_t * z with z ~ N(0, I) (Albergo & Vanden-Eijnden 2023).

Every conversion between the four parametrisations of the same field — velocity v, data estimate
x1_hat, noise estimate x0_hat and score — lives here, on the path that defines them.

``t`` is one value per row of ``x`` (shape (N,)); for ragged graph batches pass ``t[batch]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

__all__ = [
    "SchedulerOutput",
    "Scheduler",
    "CondOTScheduler",
    "CosineScheduler",
    "VPScheduler",
    "PolynomialScheduler",
    "PathSample",
    "AffinePath",
    "BrownianGamma",
    "StochasticInterpolant",
    "SCHEDULERS",
    "broadcast_time",
]


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
        alpha_t = exp(-T(s) / 2),   sigma_t = sqrt(1 - alpha_t^2).
    alpha_1 = 1, sigma_1 = 0; at t = 0, alpha_0 = exp(-(beta_min + beta_max) / 4) (about 0.006 for
    the defaults), so the source is nearly, not exactly, pure noise. sigma'_t diverges at t = 1.
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
        d_sigma = -alpha * d_alpha / sigma
        return SchedulerOutput(alpha=alpha, sigma=sigma, d_alpha=d_alpha, d_sigma=d_sigma)


@dataclass(frozen=True)
class PolynomialScheduler:
    """alpha_t = t^n, sigma_t = 1 - t^n (Meta flow_matching's polynomial convex schedule)."""

    exponent: float = 2.0

    def __post_init__(self) -> None:
        if self.exponent <= 0:
            raise ValueError(f"PolynomialScheduler exponent must be positive, got {self.exponent}")

    def __call__(self, t: Tensor) -> SchedulerOutput:
        n = self.exponent
        alpha = t**n
        d_alpha = n * t ** (n - 1)
        return SchedulerOutput(alpha=alpha, sigma=1 - alpha, d_alpha=d_alpha, d_sigma=-d_alpha)


SCHEDULERS: dict[str, type] = {
    "linear": CondOTScheduler,
    "condot": CondOTScheduler,
    "cosine": CosineScheduler,
    "vp": VPScheduler,
    "polynomial": PolynomialScheduler,
}


@dataclass(frozen=True)
class PathSample:
    """A point on a path and its target velocity. x_t and u_t are shaped like x1; t is (N,)."""

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


class AffinePath:
    """The affine conditional path x_t = alpha_t x1 + sigma_t x0 for a given scheduler.

    Example
    -------
    >>> path = AffinePath(CondOTScheduler())
    >>> x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    >>> s = path.sample(x0, x1, torch.rand(4))
    >>> torch.allclose(s.u_t, x1 - x0)
    True
    """

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        self.scheduler: Scheduler = scheduler if scheduler is not None else CondOTScheduler()

    def __repr__(self) -> str:
        return f"AffinePath({self.scheduler!r})"

    def coefficients(self, t: Tensor, like: Tensor) -> SchedulerOutput:
        """Scheduler coefficients for a per-row t, broadcast against ``like`` (N, *)."""
        out = self.scheduler(broadcast_time(t, like).to(like.dtype))
        return out

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, validate: bool = True) -> PathSample:
        """Draw x_t between x0 and x1 and its target velocity.

        x_t = alpha_t x1 + sigma_t x0,   u_t = alpha'_t x1 + sigma'_t x0

        Shapes: x0, x1: (N, *); t: (N,) -> x_t, u_t: (N, *). ``validate=False`` skips the checks
        of shapes, dtypes and the range of t (for callers that drew t themselves, in hot loops).
        """
        if validate:
            _check_pair(x0, x1, t)
        if isinstance(self.scheduler, CondOTScheduler):
            # the most used path, in two tensor ops instead of six: it is a training hot spot
            x_t = torch.lerp(x0, x1, broadcast_time(t, x1).to(x1.dtype))
            return PathSample(x0=x0, x1=x1, t=t, x_t=x_t, u_t=x1 - x0)
        c = self.coefficients(t, x1)
        return PathSample(
            x0=x0,
            x1=x1,
            t=t,
            x_t=c.alpha * x1 + c.sigma * x0,
            u_t=c.d_alpha * x1 + c.d_sigma * x0,
        )

    # --- conversions between parametrisations; x is x_t, t is per-row (N,) ---------------------

    def velocity_to_x1(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """x1_hat = (sigma_t v - sigma'_t x) / (alpha'_t sigma_t - sigma'_t alpha_t)."""
        c = self.coefficients(t, x)
        return (c.sigma * v - c.d_sigma * x) / (c.d_alpha * c.sigma - c.d_sigma * c.alpha)

    def velocity_to_x0(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """x0_hat (the noise estimate) = (alpha'_t x - alpha_t v) / (alpha'_t sigma_t - sigma'_t alpha_t)."""
        c = self.coefficients(t, x)
        return (c.d_alpha * x - c.alpha * v) / (c.d_alpha * c.sigma - c.d_sigma * c.alpha)

    def velocity_to_score(self, v: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """Score of p_t for a standard Gaussian source: s = -x0_hat / sigma_t.

        Equivalently s = (alpha_t v - alpha'_t x) / (sigma_t (alpha'_t sigma_t - alpha_t sigma'_t));
        for the linear path s = (t v - x) / (1 - t).
        """
        c = self.coefficients(t, x)
        return -self.velocity_to_x0(v, x, t) / c.sigma

    def x1_to_velocity(self, x1: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """v = alpha'_t x1 + sigma'_t (x - alpha_t x1) / sigma_t."""
        c = self.coefficients(t, x)
        return c.d_alpha * x1 + c.d_sigma * (x - c.alpha * x1) / c.sigma

    def x0_to_velocity(self, x0: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """v = alpha'_t (x - sigma_t x0) / alpha_t + sigma'_t x0."""
        c = self.coefficients(t, x)
        return c.d_alpha * (x - c.sigma * x0) / c.alpha + c.d_sigma * x0

    def score_to_velocity(self, score: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """Inverse of :meth:`velocity_to_score` (standard Gaussian source): x0_hat = -sigma_t s."""
        c = self.coefficients(t, x)
        return self.x0_to_velocity(-c.sigma * score, x, t)


@dataclass(frozen=True)
class BrownianGamma:
    """gamma_t = sqrt(scale * t (1 - t)): the Brownian-bridge noise of stochastic interpolants.

    Vanishes at both ends, so the interpolant still joins x0 and x1 exactly; gamma'_t diverges at
    t = 0 and t = 1, where its coefficient z is multiplied by a vanishing density.
    """

    scale: float = 1.0

    def __call__(self, t: Tensor) -> tuple[Tensor, Tensor]:
        g = torch.sqrt(self.scale * t * (1 - t))
        dg = self.scale * (1 - 2 * t) / (2 * g)
        return g, dg


class StochasticInterpolant(AffinePath):
    """x_t = alpha_t x1 + sigma_t x0 + gamma_t z, z ~ N(0, I) (Albergo, Boffi & Vanden-Eijnden 2023).

    The target of the velocity regression is the conditional drift
    u_t = alpha'_t x1 + sigma'_t x0 + gamma'_t z. With gamma = 0 this is the affine path.
    The parametrisation conversions inherited from :class:`AffinePath` hold for the gamma = 0 part.
    """

    def __init__(
        self,
        scheduler: Scheduler | None = None,
        gamma: BrownianGamma | None = None,
    ) -> None:
        super().__init__(scheduler)
        self.gamma = gamma if gamma is not None else BrownianGamma()

    def __repr__(self) -> str:
        return f"StochasticInterpolant({self.scheduler!r}, {self.gamma!r})"

    def sample(
        self,
        x0: Tensor,
        x1: Tensor,
        t: Tensor,
        *,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PathSample:
        """Draw x_t with its conditional drift. Shapes: x0, x1, z: (N, *); t: (N,)."""
        base = super().sample(x0, x1, t)
        if z is None:
            z = torch.randn(x1.shape, generator=generator, dtype=x1.dtype, device=x1.device)
        g, dg = self.gamma(broadcast_time(t, x1).to(x1.dtype))
        return PathSample(
            x0=x0, x1=x1, t=t, x_t=base.x_t + g * z, u_t=base.u_t + dg * z, z=z
        )

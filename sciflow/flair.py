"""FLAIR: training-free inverse problems with a flow-matching prior (Erbach et al. 2025).

Given a measurement y = A x1 (+ noise) of a sample x1 of the data the flow was trained on, FLAIR
fits a point estimate mu of x1 by a variational objective whose regulariser is the flow-matching
loss of the trained field v on the path from the source to mu:

    min_mu  ||y - A mu||^2 / (2 s_y^2)  +  int lambda(t) E_eps || v(x_t, t) - u_t(x_t | eps, mu) ||^2 dt
    x_t = alpha_t mu + sigma_t eps,   u_t = alpha'_t mu + sigma'_t eps,   eps ~ source

The two terms are optimised in decoupled steps, one network evaluation per time t on a grid
from the source towards the data (0 < t_1 < ... < t_n = ``t_max`` < 1):

1. regularisation: with v frozen (no gradient through the network; the network's Jacobian is
   dropped as in score distillation), the gradient of 1/2 ||v - u_t||^2 in mu is
   g = -alpha'_t (v - u_t) = (alpha'_t W_t / sigma_t) (mu - x1_hat),   W_t = alpha'_t sigma_t - sigma'_t alpha_t,
   a pull of mu towards the network's data estimate x1_hat(x_t, t); mu <- mu - eta lambda(t) g, the
   step capped where it would pass x1_hat (eta lambda(t) alpha'_t W_t / sigma_t <= 1);
2. data fidelity, decoupled and exact: mu <- the point of {A x = y} nearest to mu
   (:func:`sciflow.operators.project`: the operator's least-squares projection, or Landweber
   iterations), so every estimate meets the measurement exactly ("hard data consistency").

Deterministic trajectory adjustment (DTA): the noise of step i is not drawn afresh but built from
the noise the network itself predicts at the previous step, eps_hat = path.velocity_to_x0(v, x_t, t),

    eps_i = m + a(t) (eps_hat_{i-1} - m) + sqrt(1 - a(t)^2) (z_i - m),     z_i ~ source, mean m

with a(t) = ``trajectory(t)`` (t by default: fresh noise near the source, the network's own noise
near the data), so successive steps follow one flow trajectory through mu instead of independent
random ones. FLAIR uses it to recover atypical modes; on a Gaussian prior it keeps the spread of
the estimates closer to the posterior's than fresh noise does (tests/test_flair.py).

Calibrated regularisation weight: :func:`calibrate` measures off line the model's accuracy at
each t, the flow-matching error e(t) = E || v(x_t, t) - u_t ||^2 per coordinate on data the user
trusts (training or validation samples), and lambda(t) = (1 / e(t)) normalised to mean 1 over the
grid: the prior pulls hardest where the network is most accurate.

Everything is computed from network outputs under ``torch.no_grad``: no gradient reaches the
network's parameters, and FLAIR runs inside ``torch.no_grad()`` too. Dense tensors (N, *).

The projection meets y exactly, its noise included; FLAIR's latent-space variant, its
text-prompt conditioning and its data-term early stopping (for noisy y) are image-model details
left out here. A network trained to predict the data enters as its velocity field,
``matcher.velocity(net)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from sciflow.operators import LinearOperator, project
from sciflow.paths import AffinePath, ProbPath
from sciflow.solvers import Interval, time_loop, uniform_grid
from sciflow.sources import Source, as_source

__all__ = ["RegularisationWeight", "calibrate", "FLAIRConfig", "FLAIRResult", "flair"]


@dataclass(frozen=True, kw_only=True)
class RegularisationWeight:
    """lambda(t) on a grid of times, linearly interpolated (constant beyond its ends).

    ``error`` holds the off-line flow-matching errors it was calibrated from (empty for a
    constant weight). Build with :func:`calibrate` or :meth:`constant`.
    """

    times: tuple[float, ...]
    values: tuple[float, ...]
    error: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.times) != len(self.values) or not self.times:
            raise ValueError("times and values must be non-empty and of one length")
        if any(b <= a for a, b in zip(self.times[:-1], self.times[1:])):
            raise ValueError(f"times must increase strictly, got {self.times}")
        if any(not (v >= 0 and math.isfinite(v)) for v in self.values):
            raise ValueError(f"weights must be finite and >= 0, got {self.values}")

    @classmethod
    def constant(cls, value: float = 1.0) -> RegularisationWeight:
        return cls(times=(0.0,), values=(float(value),))

    def __call__(self, t: float) -> float:
        ts, vs = self.times, self.values
        if t <= ts[0]:
            return vs[0]
        for (a, va), (b, vb) in zip(zip(ts[:-1], vs[:-1]), zip(ts[1:], vs[1:])):
            if t <= b:
                return va + (vb - va) * (t - a) / (b - a)
        return vs[-1]


@torch.no_grad()
def calibrate(
    model: Callable[..., Tensor],
    data: Tensor,
    *,
    times: Sequence[float],
    source: Source | None = None,
    path: ProbPath | None = None,
    cond: Any = None,
    repeats: int = 1,
    floor: float = 1e-8,
    generator: torch.Generator | None = None,
) -> RegularisationWeight:
    """Off-line accuracy of the flow at each t, and the regularisation weight it implies.

    e(t) = mean over ``repeats`` x N draws and coordinates of (v(x_t, t) - u_t)^2, x_t on the path
    between a source draw and a data sample; lambda(t) = 1 / max(e(t), floor), normalised to mean
    1 over ``times``. Shapes: data (N, *), cond the conditions of its rows.
    """
    if not isinstance(data, Tensor) or not data.is_floating_point() or data.dim() < 2:
        raise TypeError("data must be a floating-point tensor of samples (N, *)")
    grid = tuple(float(t) for t in times)
    if not grid or any(not 0.0 <= t <= 1.0 for t in grid):
        raise ValueError(f"times must be values in [0, 1], got {grid}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    src, pth = as_source(source), path if path is not None else AffinePath()
    errors = []
    for t in grid:
        total = 0.0
        for _ in range(repeats):
            x0 = src.sample(data, cond=cond, generator=generator)
            tt = torch.full((data.shape[0],), t, dtype=data.dtype, device=data.device)
            s = pth.sample(x0, data, tt, generator=generator)
            total += float(((model(s.x_t, tt, cond=cond) - s.u_t) ** 2).mean())
        errors.append(total / repeats)
    inverse = [1.0 / max(e, floor) for e in errors]
    mean = sum(inverse) / len(inverse)
    return RegularisationWeight(times=grid, values=tuple(w / mean for w in inverse),
                                error=tuple(errors))


def _linear_trajectory(t: float) -> float:
    return t


@dataclass(frozen=True, kw_only=True)
class FLAIRConfig:
    """Settings of :func:`flair`.

    steps: network evaluations, at t_i = t_max i / steps for i = 1..steps (t = 0 is skipped: the
    noise there carries nothing of mu); t_max: the last time, < 1 (sigma_t > 0; near the data the
    network's estimate is its input, and the step gives nothing);
    step_size: eta of the regularisation step; weight: lambda(t), a number or a
    :class:`RegularisationWeight`; trajectory: a(t) of the trajectory adjustment (0 everywhere:
    fresh noise every step); data_steps, data_tol: Landweber iterations for operators without
    a closed-form projection.
    """

    steps: int = 50
    t_max: float = 0.8
    step_size: float = 1.0
    weight: float | RegularisationWeight = 1.0
    trajectory: Callable[[float], float] = field(default=_linear_trajectory, compare=False)
    data_steps: int = 100
    data_tol: float = 1e-6

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        if not 0.0 < self.t_max < 1.0:
            raise ValueError(f"t_max must lie in (0, 1) (sigma_t > 0 there), got {self.t_max}")
        if not (self.step_size > 0 and math.isfinite(self.step_size)):
            raise ValueError(f"step_size must be a finite number > 0, got {self.step_size}")
        if not isinstance(self.weight, RegularisationWeight) and not self.weight >= 0:
            raise ValueError(f"weight must be >= 0 or a RegularisationWeight, got {self.weight}")

    def lam(self, t: float) -> float:
        w = self.weight
        return w(t) if isinstance(w, RegularisationWeight) else float(w)


@dataclass(frozen=True)
class FLAIRResult:
    """x: (N, *) estimates, consistent with y; nfe: network evaluations per sample;
    residual: (N,) ||A x - y|| per sample; times: the evaluation times."""

    x: Tensor
    nfe: int
    residual: Tensor
    times: tuple[float, ...]


def _check_y(op: LinearOperator, like: Tensor, y: Tensor) -> None:
    if not isinstance(y, Tensor) or not y.is_floating_point():
        raise TypeError(f"y must be a floating-point tensor, got {type(y).__name__}")
    expected = op.forward(like).shape
    if y.shape != expected:
        raise ValueError(f"y has shape {tuple(y.shape)} but the operator maps samples of shape "
                         f"{tuple(like.shape)} to {tuple(expected)}; pass like= one sample per row")


@torch.no_grad()
def flair(
    model: Callable[..., Tensor],
    y: Tensor,
    operator: LinearOperator,
    *,
    like: Tensor,
    config: FLAIRConfig | None = None,
    source: Source | None = None,
    path: ProbPath | None = None,
    cond: Any = None,
    init: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> FLAIRResult:
    """Solve y = A x with the flow ``model`` as prior (algorithm in the module docstring).

    Parameters
    ----------
    model:
        The trained velocity field ``model(x, t, *, cond)`` (its parameters are never touched).
    y, operator:
        The measurement and its linear operator (:mod:`sciflow.operators`).
    like:
        A tensor shaped like the unknowns (N, *) (dtype and device too).
    source, path:
        The model's source (N(0, I) by default; a :class:`~sciflow.sources.GaussianSource` with a
        conditional mean receives ``cond``) and path (linear by default).
    init:
        The start of mu before its first projection; the source mean (0) by default, so mu_0 =
        A^+ y for a centred source.

    Notes
    -----
    Shapes: y as ``operator.forward(like)`` -> FLAIRResult.x (N, *).
    """
    cfg = config if config is not None else FLAIRConfig()
    if not isinstance(like, Tensor) or not like.is_floating_point():
        raise TypeError(f"like must be a floating-point tensor (N, *), got {type(like).__name__}")
    _check_y(operator, like, y)
    src, pth = as_source(source), path if path is not None else AffinePath()
    mean_of = getattr(src, "mean_of", None)
    m = mean_of(like, cond=cond) if mean_of is not None else None
    m = torch.zeros_like(like) if m is None else m.expand_as(like)
    if init is not None and (not isinstance(init, Tensor) or init.shape != like.shape):
        got = tuple(init.shape) if isinstance(init, Tensor) else type(init).__name__
        raise ValueError(f"init must be shaped like the unknowns {tuple(like.shape)}, got {got}")
    start = (m if init is None else init).to(like)

    def consistent(x: Tensor) -> Tensor:
        return project(operator, x, y, steps=cfg.data_steps, tol=cfg.data_tol)

    n = like.shape[0]

    def advance(state: tuple[Tensor, Tensor | None], step: Interval) -> tuple[Tensor, Tensor]:
        mu, eps_hat = state
        t = step.t_next
        z = src.sample(like, cond=cond, generator=generator)
        a = float(cfg.trajectory(t)) if eps_hat is not None else 0.0
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"trajectory(t) must lie in [0, 1], got {a} at t={t}")
        eps = z if eps_hat is None else m + a * (eps_hat - m) + math.sqrt(1 - a * a) * (z - m)
        tt = torch.full((n,), t, dtype=like.dtype, device=like.device)
        c = pth.coefficients(tt, like)
        x_t = c.alpha * mu + c.sigma * eps
        v = model(x_t, tt, cond=cond)
        u = c.d_alpha * mu + c.d_sigma * eps
        gain = c.d_alpha * (c.d_alpha * c.sigma - c.d_sigma * c.alpha) / c.sigma
        rate = cfg.step_size * cfg.lam(t)
        scale = torch.clamp(rate * gain, max=1.0) / gain  # the step never passes x1_hat
        mu = consistent(mu + scale * c.d_alpha * (v - u))
        return mu, pth.velocity_to_x0(v, x_t, tt)

    grid = uniform_grid(0.0, cfg.t_max, cfg.steps)
    mu, _ = time_loop(advance, (consistent(start), None), grid)
    residual = (operator.forward(mu) - y).reshape(n, -1).norm(dim=1)
    return FLAIRResult(x=mu, nfe=cfg.steps, residual=residual, times=grid[1:])

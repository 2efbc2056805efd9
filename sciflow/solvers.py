"""ODE and SDE samplers and log-likelihoods for velocity fields.

A velocity field is anything called as ``f(x, t, *, cond=None, batch=None)`` with ``t`` one value per
sample (per graph for ragged batches). Fixed-step solvers are tiny classes with an ``order`` and a
``step`` (after torchdiffeq / diffrax); their loop keeps the time grid in Python floats, so it makes
no host-device synchronisation. ``dopri5`` adapts its steps (Dormand & Prince 1980) and must look at
its error estimate on the host each step.

Stochastic sampling: :class:`SDEStep` is the one Euler-Maruyama step of the SDE with the flow's
marginals (any Gaussian source N(m, s^2 I)); :func:`sde_sample` runs it over a whole trajectory and
the particle searches of :mod:`sciflow.particles` run it one step at a time.

Convention: integrate from t0 = 0 (source) to t1 = 1 (data); t1 < t0 integrates backwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.paths import AffinePath

__all__ = [
    "Solver",
    "Euler",
    "Midpoint",
    "Heun",
    "RK4",
    "SOLVERS",
    "ODESolution",
    "odeint",
    "SDEStep",
    "sde_sample",
    "log_likelihood",
    "standard_normal_log_prob",
]

Field = Callable[[Tensor, float], Tensor]
"""A field closed over its conditions: f(x, t) with a Python float t."""


class Solver(Protocol):
    order: int

    def step(self, f: Field, x: Tensor, t: float, dt: float) -> Tensor: ...


class Euler:
    """x_{n+1} = x_n + h f(x_n, t_n). Order 1, one evaluation a step."""

    order = 1
    evals = 1

    def step(self, f: Field, x: Tensor, t: float, dt: float) -> Tensor:
        return x + dt * f(x, t)


class Midpoint:
    """x_{n+1} = x_n + h f(x_n + h/2 f(x_n, t_n), t_n + h/2). Order 2, two evaluations."""

    order = 2
    evals = 2

    def step(self, f: Field, x: Tensor, t: float, dt: float) -> Tensor:
        return x + dt * f(x + 0.5 * dt * f(x, t), t + 0.5 * dt)


class Heun:
    """Trapezoidal predictor-corrector: k1 = f(x, t), k2 = f(x + h k1, t + h), x + h (k1 + k2) / 2."""

    order = 2
    evals = 2

    def step(self, f: Field, x: Tensor, t: float, dt: float) -> Tensor:
        k1 = f(x, t)
        k2 = f(x + dt * k1, t + dt)
        return x + 0.5 * dt * (k1 + k2)


class RK4:
    """The classical fourth-order Runge-Kutta method. Order 4, four evaluations."""

    order = 4
    evals = 4

    def step(self, f: Field, x: Tensor, t: float, dt: float) -> Tensor:
        k1 = f(x, t)
        k2 = f(x + 0.5 * dt * k1, t + 0.5 * dt)
        k3 = f(x + 0.5 * dt * k2, t + 0.5 * dt)
        k4 = f(x + dt * k3, t + dt)
        return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


SOLVERS: dict[str, type] = {"euler": Euler, "midpoint": Midpoint, "heun": Heun, "rk4": RK4}


@dataclass(frozen=True)
class ODESolution:
    """The end state, the number of field evaluations, and (on request) the states on the grid."""

    x: Tensor
    nfe: int
    times: tuple[float, ...]
    trajectory: tuple[Tensor, ...] | None = None


def _bind(
    model: Callable[..., Tensor], x_like: Tensor, cond: Any, batch: Tensor | None
) -> tuple[Field, list[int]]:
    """Close a velocity model over its conditions; count evaluations."""
    n = graphs.num_graphs(batch, x_like.shape[0]) if batch is not None else x_like.shape[0]
    counter = [0]

    def f(x: Tensor, t: float) -> Tensor:
        counter[0] += 1
        tt = torch.full((n,), t, dtype=x.dtype, device=x.device)
        return model(x, tt, cond=cond, batch=batch)

    return f, counter


def _check_start(x0: Tensor, t0: float, t1: float) -> None:
    if not isinstance(x0, Tensor) or not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor, got {type(x0).__name__}"
                        + (f" of dtype {x0.dtype}" if isinstance(x0, Tensor) else ""))
    for name, v in (("t0", t0), ("t1", t1)):
        if not (0.0 <= v <= 1.0):
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    if t0 == t1:
        raise ValueError(f"t0 and t1 must differ, both are {t0}")


def odeint(
    model: Callable[..., Tensor],
    x0: Tensor,
    *,
    method: str = "euler",
    steps: int | None = None,
    t0: float = 0.0,
    t1: float = 1.0,
    cond: Any = None,
    batch: Tensor | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    max_steps: int = 10_000,
    step_hook: Callable[[Tensor], Tensor] | None = None,
    return_trajectory: bool = False,
) -> ODESolution:
    """Integrate dx/dt = model(x, t) from t0 to t1.

    Parameters
    ----------
    method:
        ``"euler"``, ``"midpoint"``, ``"heun"``, ``"rk4"`` (fixed steps: ``steps`` is required) or
        ``"dopri5"`` (adaptive, ``atol``/``rtol``).
    step_hook:
        Applied to the state after every accepted step, e.g. a rounding to a low-precision format
        (:mod:`sciflow.precision`) that emulates storing the solver state in that format.

    Shapes: x0 (N, *) -> ODESolution.x (N, *). ``batch`` (N,) for ragged graph batches.

    Example
    -------
    >>> sol = odeint(lambda x, t, cond=None, batch=None: -x, torch.ones(3, 2), method="rk4", steps=20)
    >>> float(sol.x[0, 0])  # doctest: +ELLIPSIS
    0.3678...
    """
    _check_start(x0, t0, t1)
    f, counter = _bind(model, x0, cond, batch)
    if method == "dopri5":
        x, times, traj = _dopri5(f, x0, t0, t1, atol, rtol, max_steps, step_hook, return_trajectory)
        return ODESolution(x=x, nfe=counter[0], times=times, trajectory=traj)
    if method not in SOLVERS:
        raise ValueError(f"unknown ODE method {method!r}; choose from {sorted(SOLVERS)} or 'dopri5'")
    if steps is None or int(steps) < 1:
        raise ValueError(f"fixed-step method {method!r} needs steps >= 1, got {steps}")
    solver = SOLVERS[method]()
    grid = [t0 + (t1 - t0) * i / steps for i in range(steps + 1)]
    x = x0
    traj = [x0] if return_trajectory else None
    for ta, tb in zip(grid[:-1], grid[1:]):
        x = solver.step(f, x, ta, tb - ta)
        if step_hook is not None:
            x = step_hook(x)
        if traj is not None:
            traj.append(x)
    return ODESolution(x=x, nfe=counter[0], times=tuple(grid),
                       trajectory=tuple(traj) if traj is not None else None)


# Dormand-Prince 5(4) tableau (Dormand & Prince 1980), first-same-as-last.
_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DP_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_DP_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_DP_E = tuple(b5 - b4 for b5, b4 in zip(_DP_B5, _DP_B4))


def _dopri5(
    f: Field,
    x: Tensor,
    t0: float,
    t1: float,
    atol: float,
    rtol: float,
    max_steps: int,
    step_hook: Callable[[Tensor], Tensor] | None,
    keep: bool,
) -> tuple[Tensor, tuple[float, ...], tuple[Tensor, ...] | None]:
    direction = 1.0 if t1 > t0 else -1.0
    span = abs(t1 - t0)
    t = t0
    k1 = f(x, t)
    scale = atol + rtol * x.abs()
    d0 = float(torch.sqrt(torch.mean((x / scale) ** 2)))
    d1 = float(torch.sqrt(torch.mean((k1 / scale) ** 2)))
    h = 0.01 * d0 / d1 if d0 > 1e-5 and d1 > 1e-5 else 1e-3
    h = min(max(h, 1e-6), span)
    times, traj = [t0], ([x] if keep else None)
    for _ in range(max_steps):
        remaining = abs(t1 - t)
        if remaining <= 1e-12 * max(1.0, span):
            break
        h = min(h, remaining)
        dt = direction * h
        ks = [k1]
        for i in range(1, 7):
            xi = x + dt * sum(a * k for a, k in zip(_DP_A[i], ks) if a != 0.0)
            ks.append(f(xi, t + _DP_C[i] * dt))
        x_new = xi  # the 7th stage state is the fifth-order solution (FSAL)
        err = dt * sum(e * k for e, k in zip(_DP_E, ks) if e != 0.0)
        tol = atol + rtol * torch.maximum(x.abs(), x_new.abs())
        norm = float(torch.sqrt(torch.mean((err / tol) ** 2)))
        if not math.isfinite(norm):
            raise FloatingPointError(f"dopri5: non-finite error estimate at t={t:.6g}")
        if norm <= 1.0:
            t = t + dt
            x = step_hook(x_new) if step_hook is not None else x_new
            k1 = ks[-1] if step_hook is None else f(x, t)
            times.append(t)
            if traj is not None:
                traj.append(x)
        factor = 10.0 if norm == 0.0 else min(10.0, max(0.2, 0.9 * norm ** -0.2))
        h = h * factor
    else:
        raise RuntimeError(f"dopri5 did not reach t1={t1} within max_steps={max_steps} (at t={t:.6g})")
    return x, tuple(times), tuple(traj) if traj is not None else None


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

    With m = 0, s = 1 this is x + dt (v + eps_t score) + sqrt(2 eps_t dt) z.

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

    Shapes: v, x (N, *) -> (N, *); ``batch`` (N,) for ragged graph batches.
    """

    path: AffinePath = field(default_factory=AffinePath)
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
        return x + dt * (v - e * x0_hat / sigma_t) + self.source_scale * math.sqrt(2.0 * e * dt) * z


def sde_sample(
    model: Callable[..., Tensor],
    x0: Tensor,
    *,
    path: AffinePath | None = None,
    steps: int,
    diffusion: float | Callable[[float], float] = 1.0,
    source_scale: float = 1.0,
    source_mean: Tensor | Callable[[Any], Tensor] | None = None,
    cond: Any = None,
    batch: Tensor | None = None,
    center_noise: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample with the SDE that has the flow's marginals, using the score implied by the velocity.

    dX = [v(X, t) + eps_t s^2 score(X, t)] dt + s sqrt(2 eps_t) dW, for a source
    x0 ~ N(m, s^2 I) (``source_mean`` m, ``source_scale`` s; defaults N(0, I)); each step is
    :class:`SDEStep` (equations there; Albergo et al. 2023): for any eps_t >= 0 the marginals
    match the ODE's. ``diffusion`` is eps_t: a constant is multiplied by (1 - t) so the noise
    vanishes at the data end; pass a callable for your own schedule. Euler-Maruyama on a uniform
    grid from t = 0 to 1; the last step adds no noise. ``center_noise`` removes each graph's mean
    from the noise (zero-centre-of-mass point clouds). ``path`` defaults to the linear path.

    Shapes: x0 (N, *) -> (N, *); ``batch`` (N,) for ragged graph batches.
    """
    _check_start(x0, 0.0, 1.0)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    step = SDEStep(path=path if path is not None else AffinePath(), diffusion=diffusion,
                   center_noise=center_noise, source_scale=source_scale, source_mean=source_mean)
    f, _ = _bind(model, x0, cond, batch)
    dt = 1.0 / steps
    x = x0
    for i in range(steps):
        t = i * dt
        x = step(f(x, t), x, t, dt, batch=batch, last=i == steps - 1, cond=cond,
                 generator=generator)
    return x


def standard_normal_log_prob(x: Tensor, batch: Tensor | None = None) -> Tensor:
    """log N(x; 0, I) per sample (dense rows) or per graph (sum over its nodes)."""
    per_row = -0.5 * (x.reshape(x.shape[0], -1) ** 2).sum(1) - 0.5 * math.log(2 * math.pi) * (
        x[0].numel() if x.shape[0] else 0
    )
    return per_row if batch is None else graphs.graph_sum(per_row, batch)


def _local_index(batch: Tensor) -> Tensor:
    """Position of each node inside its graph (batch sorted)."""
    sizes = torch.bincount(batch)
    start = torch.cumsum(sizes, 0) - sizes
    return torch.arange(batch.numel(), device=batch.device) - start[batch]


def log_likelihood(
    model: Callable[..., Tensor],
    x1: Tensor,
    *,
    method: str = "rk4",
    steps: int = 50,
    divergence: str = "exact",
    source_log_prob: Callable[[Tensor, Tensor | None], Tensor] = standard_normal_log_prob,
    cond: Any = None,
    batch: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """log p_1(x1) by the instantaneous change of variables (Chen et al. 2018):

        log p_1(x1) = log p_0(x0) - int_0^1 div v(x_t, t) dt,  x_t the ODE path back from x1.

    ``divergence="exact"`` differentiates every coordinate (D backward passes per evaluation for
    dense data; max-graph-size x D for graphs); ``"hutchinson"`` uses one Rademacher probe
    eps^T (dv/dx) eps, fixed along the path (Grathwohl et al. 2019): unbiased, one backward pass.
    Returns (N,) per sample, or (B,) per graph with ``batch``.
    """
    if divergence not in ("exact", "hutchinson"):
        raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
    flat = x1.reshape(x1.shape[0], -1)
    d = flat.shape[1]
    probe = None
    if divergence == "hutchinson":
        probe = torch.randint(0, 2, flat.shape, generator=generator, device=x1.device).to(x1.dtype)
        probe = 2 * probe - 1
    local = _local_index(batch) if batch is not None else None

    def augmented(z: Tensor, t: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor:
        with torch.enable_grad():
            x = z[:, :d].detach().requires_grad_(True)
            v = model(x.reshape(x1.shape), t, cond=cond, batch=batch).reshape(x.shape[0], d)
            if probe is not None:
                (g,) = torch.autograd.grad((v * probe).sum(), x)
                div = (g * probe).sum(1)
            else:
                div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
                groups = [None] if local is None else [local == r for r in range(int(local.max()) + 1)]
                for rows in groups:
                    for k in range(d):
                        vk = v[:, k] if rows is None else v[rows, k]
                        (g,) = torch.autograd.grad(vk.sum(), x, retain_graph=True)
                        div = div + (g[:, k] if rows is None else g[:, k] * rows.to(x.dtype))
        return torch.cat([v.detach(), div.detach()[:, None]], dim=1)

    z1 = torch.cat([flat, torch.zeros_like(flat[:, :1])], dim=1)
    sol = odeint(augmented, z1, method=method, steps=steps, t0=1.0, t1=0.0, cond=cond, batch=batch)
    x0 = sol.x[:, :d].reshape(x1.shape)
    accumulated = sol.x[:, d]  # int_1^0 div dt = -int_0^1 div dt, per row
    if batch is not None:
        accumulated = graphs.graph_sum(accumulated, batch)
    return source_log_prob(x0, batch) + accumulated

"""Explicit Runge-Kutta methods as Butcher tableaux on one base class, and the solver registry.

After torchdiffeq's ``_ButcherTableau`` and diffrax: a method is a :class:`ButcherTableau` on
:class:`RungeKutta`, which has an ``order``, the field ``evals`` per step, a ``step`` and
``integrate`` on the uniform grid of :func:`~sciflow.solvers.loop.time_loop`. The adaptive
:class:`Dopri5` is the same base with an embedded error estimate and a step controller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor

from sciflow.solvers.loop import Field, Interval, StepHook, time_loop, uniform_grid

__all__ = ["ButcherTableau", "Solver", "RungeKutta", "Euler", "Midpoint", "Heun", "RK4", "Dopri5",
           "SOLVERS"]


@dataclass(frozen=True, kw_only=True)
class ButcherTableau:
    """An explicit Runge-Kutta method: stages k_i = f(x + h sum_j a_ij k_j, t + c_i h), then
    x_{n+1} = x_n + (h / denominator) sum_i b_i k_i.

    ``b_error`` (embedded methods): the weights of the error estimate h sum_i e_i k_i. ``fsal``:
    the last stage is evaluated at the new state (first same as last), so an accepted step hands
    its last k to the next one. ``denominator`` lets the weights be written as integers
    (RK4: b = (1, 2, 2, 1) / 6).
    """

    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    denominator: float = 1.0
    b_error: tuple[float, ...] | None = None
    fsal: bool = False

    def __post_init__(self) -> None:
        n = len(self.c)
        if len(self.a) != n or any(len(row) != i for i, row in enumerate(self.a)) or len(self.b) != n:
            raise ValueError(f"a Butcher tableau with {n} stages needs a strictly lower-triangular "
                             f"a (row i of length i) and {n} weights b")

    @property
    def stages(self) -> int:
        """Stages a plain step evaluates (trailing stages of zero weight are skipped)."""
        return max(i for i, w in enumerate(self.b) if w != 0.0) + 1


def _combine(weights: Sequence[float], ks: Sequence[Tensor]) -> Tensor:
    """sum_i w_i k_i over the non-zero weights, in stage order."""
    return sum(w * k for w, k in zip(weights, ks) if w != 0.0)  # type: ignore[return-value]


class Solver(Protocol):
    """An ODE solver: its ``order``, the field ``evals`` one step costs, whether it is ``adaptive``,
    one ``step`` of size dt, and ``integrate`` from t0 to t1 (on a uniform grid of ``steps``, or
    on its own intervals when adaptive) with hooks after every accepted step. ``integrate``
    returns the end state and the times it stopped at."""

    order: int
    evals: int
    adaptive: bool

    def step(self, f: Field, x: Tensor, t: float, dt: float) -> Tensor: ...

    def integrate(self, f: Field, x0: Tensor, t0: float, t1: float, *, steps: int | None = None,
                  hooks: Sequence[StepHook] = ()) -> tuple[Tensor, tuple[float, ...]]: ...


class RungeKutta:
    """An explicit Runge-Kutta method from its :class:`ButcherTableau`, on a uniform grid.

    Subclasses set ``tableau``; ``order`` and ``evals`` follow from it.
    """

    tableau: ClassVar[ButcherTableau]
    order: ClassVar[int]
    evals: ClassVar[int]
    adaptive: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.order = cls.tableau.order
        cls.evals = cls.tableau.stages

    def stage_values(self, f: Field, x: Tensor, t: float, dt: float, count: int,
                     first: Tensor | None = None) -> list[Tensor]:
        """k_1..k_count of one step (k_1 = ``first`` when the caller already has it)."""
        tab = self.tableau
        ks = [f(x, t) if first is None else first]
        for i in range(1, count):
            ks.append(f(x + dt * _combine(tab.a[i], ks), t + tab.c[i] * dt))
        return ks

    def step(self, f: Field, x: Tensor, t: float, dt: float) -> Tensor:
        """x_{n+1} = x_n + (h / denominator) sum_i b_i k_i (``evals`` field evaluations)."""
        ks = self.stage_values(f, x, t, dt, self.evals)
        return x + (dt / self.tableau.denominator) * _combine(self.tableau.b, ks)

    def integrate(self, f: Field, x0: Tensor, t0: float, t1: float, *, steps: int | None = None,
                  hooks: Sequence[StepHook] = ()) -> tuple[Tensor, tuple[float, ...]]:
        """``steps`` steps on :func:`uniform_grid` (t0, t1) through :func:`time_loop`."""
        if steps is None or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"fixed-step method {type(self).__name__} needs steps >= 1, got {steps}")
        grid = uniform_grid(t0, t1, steps)
        x = time_loop(lambda x, s: self.step(f, x, s.t, s.dt), x0, grid, hooks=hooks)
        return x, grid


class Euler(RungeKutta):
    """x_{n+1} = x_n + h f(x_n, t_n). Order 1, one evaluation a step."""

    tableau = ButcherTableau(order=1, c=(0.0,), a=((),), b=(1.0,))


class Midpoint(RungeKutta):
    """x_{n+1} = x_n + h f(x_n + h/2 f(x_n, t_n), t_n + h/2). Order 2, two evaluations."""

    tableau = ButcherTableau(order=2, c=(0.0, 0.5), a=((), (0.5,)), b=(0.0, 1.0))


class Heun(RungeKutta):
    """Trapezoidal predictor-corrector: k1 = f(x, t), k2 = f(x + h k1, t + h), x + h (k1 + k2) / 2."""

    tableau = ButcherTableau(order=2, c=(0.0, 1.0), a=((), (1.0,)), b=(1.0, 1.0), denominator=2.0)


class RK4(RungeKutta):
    """The classical fourth-order Runge-Kutta method. Order 4, four evaluations."""

    tableau = ButcherTableau(
        order=4,
        c=(0.0, 0.5, 0.5, 1.0),
        a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
        b=(1.0, 2.0, 2.0, 1.0),
        denominator=6.0,
    )


_DP_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_DP_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)


class Dopri5(RungeKutta):
    """Adaptive Dormand-Prince 5(4) (Dormand & Prince 1980), first-same-as-last.

    Each attempted step costs ``evals`` = 6 evaluations (one more at the start); the error
    estimate e = h sum_i (b5_i - b4_i) k_i is measured in the RMS norm with tolerance
    atol + rtol max(|x_n|, |x_{n+1}|); a step is accepted when that norm is <= 1, and h is scaled by
    min(10, max(0.2, 0.9 norm^(-1/5))). ``step`` alone is the fifth-order step of size h.
    """

    tableau = ButcherTableau(
        order=5,
        c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
        a=(
            (),
            (1 / 5,),
            (3 / 40, 9 / 40),
            (44 / 45, -56 / 15, 32 / 9),
            (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
            (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
            _DP_B5[:6],
        ),
        b=_DP_B5,
        b_error=tuple(b5 - b4 for b5, b4 in zip(_DP_B5, _DP_B4)),
        fsal=True,
    )
    adaptive = True

    def __init__(self, *, atol: float = 1e-5, rtol: float = 1e-5, max_steps: int = 10_000) -> None:
        if not (atol > 0 and rtol >= 0):
            raise ValueError(f"dopri5 needs atol > 0 and rtol >= 0, got atol={atol}, rtol={rtol}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        self.atol, self.rtol, self.max_steps = atol, rtol, max_steps

    def integrate(self, f: Field, x0: Tensor, t0: float, t1: float, *, steps: int | None = None,
                  hooks: Sequence[StepHook] = ()) -> tuple[Tensor, tuple[float, ...]]:
        """Adaptive steps from t0 to t1 (``steps`` is ignored). Raises FloatingPointError on a
        non-finite error estimate and RuntimeError past ``max_steps`` attempts."""
        atol, rtol, tab = self.atol, self.rtol, self.tableau
        direction = 1.0 if t1 > t0 else -1.0
        span = abs(t1 - t0)
        done = 1e-12 * max(1.0, span)
        t, x = t0, x0
        k1 = f(x, t)
        scale = atol + rtol * x.abs()
        d0 = float(torch.sqrt(torch.mean((x / scale) ** 2)))
        d1 = float(torch.sqrt(torch.mean((k1 / scale) ** 2)))
        h = 0.01 * d0 / d1 if d0 > 1e-5 and d1 > 1e-5 else 1e-3
        h = min(max(h, 1e-6), span)
        times, accepted = [t0], 0
        for _ in range(self.max_steps):
            remaining = abs(t1 - t)
            if remaining <= done:
                break
            h = min(h, remaining)
            dt = direction * h
            ks = self.stage_values(f, x, t, dt, len(tab.c), first=k1)
            x_new = x + dt * _combine(tab.a[-1], ks[:-1])  # the FSAL stage's state: order 5
            err = dt * _combine(tab.b_error, ks)  # type: ignore[arg-type]
            tol = atol + rtol * torch.maximum(x.abs(), x_new.abs())
            norm = float(torch.sqrt(torch.mean((err / tol) ** 2)))
            if not math.isfinite(norm):
                raise FloatingPointError(f"dopri5: non-finite error estimate at t={t:.6g}")
            if norm <= 1.0:
                interval = Interval(index=accepted, t=t, t_next=t + dt,
                                    last=abs(t1 - (t + dt)) <= done)
                t, x, accepted = t + dt, x_new, accepted + 1
                for hook in hooks:
                    x = hook(x, interval)
                k1 = ks[-1] if x is x_new else f(x, t)  # a hook that changed x voids FSAL
                times.append(t)
            factor = 10.0 if norm == 0.0 else min(10.0, max(0.2, 0.9 * norm ** -0.2))
            h = h * factor
        else:
            raise RuntimeError(f"dopri5 did not reach t1={t1} within max_steps={self.max_steps} "
                               f"(at t={t:.6g})")
        return x, tuple(times)


SOLVERS: dict[str, type[RungeKutta]] = {
    "euler": Euler,
    "midpoint": Midpoint,
    "heun": Heun,
    "rk4": RK4,
    "dopri5": Dopri5,
}
"""Every ODE solver by name; :func:`odeint` builds ``SOLVERS[method]`` (adaptive ones with
``atol``, ``rtol``, ``max_steps``)."""

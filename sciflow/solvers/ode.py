"""odeint: integrate a velocity field with any solver of :data:`~sciflow.solvers.SOLVERS`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.solvers.loop import Field, StepHook, _Recorder
from sciflow.solvers.runge_kutta import SOLVERS

__all__ = ["ODESolution", "odeint"]


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
    hooks: Sequence[StepHook] = (),
    return_trajectory: bool = False,
) -> ODESolution:
    """Integrate dx/dt = model(x, t) from t0 to t1.

    Parameters
    ----------
    method:
        A name in :data:`SOLVERS`: ``"euler"``, ``"midpoint"``, ``"heun"``, ``"rk4"`` (fixed steps:
        ``steps`` is required) or ``"dopri5"`` (adaptive: ``atol``/``rtol``/``max_steps``; ``steps``
        is ignored).
    step_hook:
        Applied to the state after every accepted step, e.g. a rounding to a low-precision format
        (:class:`sciflow.precision.StateRounding`) that emulates storing the solver state in it.
    hooks:
        :data:`StepHook` s ``hook(x, interval) -> x``, run after ``step_hook``.

    Notes
    -----
    Shapes: x0 (N, *) -> ODESolution.x (N, *). ``batch`` (N,) for ragged graph batches.

    Example
    -------
    >>> sol = odeint(lambda x, t, cond=None, batch=None: -x, torch.ones(3, 2), method="rk4", steps=20)
    >>> float(sol.x[0, 0])  # doctest: +ELLIPSIS
    0.3678...
    """
    _check_start(x0, t0, t1)
    if method not in SOLVERS:
        raise ValueError(f"unknown ODE method {method!r}; choose from {sorted(SOLVERS)}")
    kind = SOLVERS[method]
    if not kind.adaptive and (steps is None or int(steps) < 1):
        raise ValueError(f"fixed-step method {method!r} needs steps >= 1, got {steps}")
    solver = kind(atol=atol, rtol=rtol, max_steps=max_steps) if kind.adaptive else kind()
    f, counter = _bind(model, x0, cond, batch)
    every: list[StepHook] = [] if step_hook is None else [lambda x, s: step_hook(x)]
    every += list(hooks)
    recorder = _Recorder(x0) if return_trajectory else None
    if recorder is not None:
        every.append(recorder)
    x, times = solver.integrate(f, x0, t0, t1, steps=None if steps is None else int(steps),
                                hooks=every)
    return ODESolution(x=x, nfe=counter[0], times=times,
                       trajectory=tuple(recorder.states) if recorder is not None else None)

"""The one time loop: a grid of Python floats, an advance function per interval, hooks after it.

Fixed-step ODE solvers, the SDE sampler, FlowChef steering and the particle searches all march from
the source to the data through :func:`time_loop`; precision emulation and trajectory recording are
hooks. The grid is :func:`uniform_grid`; the adaptive solver proposes its own intervals and runs the
same hooks (:class:`~sciflow.solvers.runge_kutta.Dopri5`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import Tensor

__all__ = ["Field", "Interval", "StepHook", "uniform_grid", "time_loop"]

Field = Callable[[Tensor, float], Tensor]
"""A field closed over its conditions: f(x, t) with a Python float t."""

State = TypeVar("State")


@dataclass(frozen=True)
class Interval:
    """One step of a time loop: from ``t`` to ``t_next`` (grid points), ``index`` counting from 0,
    ``last`` when it ends the integration."""

    index: int
    t: float
    t_next: float
    last: bool

    @property
    def dt(self) -> float:
        """The signed step t_next - t."""
        return self.t_next - self.t


StepHook = Callable[[Any, Interval], Any]
"""hook(state, interval) -> state, called after every (accepted) step, e.g. rounding the state to
a low-precision format or recording it. A hook that only observes returns the state it was given."""


def uniform_grid(t0: float, t1: float, steps: int) -> tuple[float, ...]:
    """t_i = t0 + (t1 - t0) i / steps for i = 0..steps, as Python floats."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return tuple(t0 + (t1 - t0) * i / steps for i in range(steps + 1))


def time_loop(
    advance: Callable[[State, Interval], State],
    state: State,
    grid: Sequence[float],
    *,
    hooks: Sequence[StepHook] = (),
) -> State:
    """Run ``state = advance(state, interval)`` over every interval of ``grid``, then each hook.

    ``state`` is whatever the method carries: the samples for an ODE or SDE, the samples with
    their weights and cached velocities for sequential Monte Carlo.
    """
    last = len(grid) - 2
    for i in range(last + 1):
        step = Interval(index=i, t=grid[i], t_next=grid[i + 1], last=i == last)
        state = advance(state, step)
        for hook in hooks:
            state = hook(state, step)
    return state


class _Recorder:
    """A hook that keeps every state it sees (the trajectory), after the start state."""

    def __init__(self, start: Tensor) -> None:
        self.states: list[Tensor] = [start]

    def __call__(self, x: Tensor, step: Interval) -> Tensor:
        self.states.append(x)
        return x

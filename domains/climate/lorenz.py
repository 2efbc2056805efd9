"""The Lorenz 1963 system, integrated with RK4, for ensembles of any leading shape.

    dx/dt = sigma (y - x),   dy/dt = x (rho - z) - y,   dz/dt = x y - beta z

Lorenz, J. Atmos. Sci. 20, 1963. The classic parameters (sigma 10, rho 28, beta 8/3) and RK4 with
dt 0.01 are those of rpe's Lorenz test, used by Paxton et al. (J. Climate 35(4), 2022) as the first
low-precision testbed: its attractor is the "climate", the distribution of x, y, z over a long run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Lorenz63", "lorenz_ensemble"]


@dataclass(frozen=True, kw_only=True)
class Lorenz63:
    """Lorenz 1963 parameters and its RK4 stepper.

    Shapes: states are (..., 3) with (x, y, z) last; any leading dimensions are ensemble members
    (and, under :func:`sciflow.precision.emulate_sweep`, precision arms).
    """

    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0
    dt: float = 0.01

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")

    def tendency(self, state: Tensor) -> Tensor:
        """(dx/dt, dy/dt, dz/dt) at ``state``; (..., 3) -> (..., 3)."""
        x, y, z = state.unbind(-1)
        dx = self.sigma * (y - x)
        dy = x * (self.rho - z) - y
        dz = x * y - self.beta * z
        return torch.stack([dx, dy, dz], dim=-1)

    def step(self, state: Tensor) -> Tensor:
        """One classical RK4 step of length ``dt``; (..., 3) -> (..., 3)."""
        h = self.dt
        k1 = self.tendency(state)
        k2 = self.tendency(state + (0.5 * h) * k1)
        k3 = self.tendency(state + (0.5 * h) * k2)
        k4 = self.tendency(state + h * k3)
        return state + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    def run(
        self,
        state: Tensor,
        *,
        steps: int,
        spinup: int = 0,
        every: int = 1,
        state_rounding: Callable[[Tensor], Tensor] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Tensor:
        """Integrate and record the state every ``every`` steps after ``spinup`` steps.

        Parameters
        ----------
        state:
            (..., 3) initial state.
        steps:
            recorded steps after the spin-up (``steps // every`` snapshots).
        state_rounding:
            applied to the state after every step (the lighter emulation mode, e.g.
            :class:`sciflow.precision.StateRounding`).
        progress:
            called with the number of steps done (spin-up included) after each step.

        Returns
        -------
        Tensor
            (steps // every, ..., 3) trajectory.
        """
        if state.shape[-1:] != (3,):
            raise ValueError(f"state must end in (x, y, z), got shape {tuple(state.shape)}")
        for name, value in (("steps", steps), ("spinup", spinup)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        record = []
        for n in range(spinup + steps):
            state = self.step(state)
            if state_rounding is not None:
                state = state_rounding(state)
            if n >= spinup and (n - spinup + 1) % every == 0:
                record.append(state)
            if progress is not None:
                progress(n + 1)
        if not record:
            return state.new_empty((0, *state.shape))
        return torch.stack(record)


def lorenz_ensemble(
    members: int,
    *,
    spread: float = 1.0,
    center: tuple[float, float, float] = (1.0, 1.0, 20.0),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """``members`` initial states scattered around ``center`` with standard deviation ``spread``.

    Shapes: -> (members, 3).
    """
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    noise = torch.randn(members, 3, generator=generator, dtype=torch.float64)
    return (torch.tensor(center, dtype=torch.float64) + spread * noise).to(dtype)

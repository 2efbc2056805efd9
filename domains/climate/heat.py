"""Heat diffusion in a soil column: the stagnation testbed of the low-precision study.

    dT/dt = D d^2T/dz^2,  T(0, t) = T_surface,  dT/dz = 0 at the bottom,  T(z, 0) = T_0

discretised with centred differences and forward Euler,

    T_i <- T_i + c (T_{i-1} - 2 T_i + T_{i+1}),   c = D dt / dz^2,

with the settings of Klöwer's HeatSolver.jl after Dawson et al. (GMD 11, 2018), shown in Paxton
et al. (J. Climate 35(4), 2022): 60 m deep, dz 1 m, dt 1800 s, D 7e-7 m^2/s (c = 1.26e-3), soil at
273.15 K warmed by a 280 K surface for 100 years. The increments are tiny against T ~ 275 K, so
round-to-nearest stagnates wherever ``c * laplacian`` is below half an ulp of T (float16's ulp at
256-512 K is 0.25 K: no warming at all); stochastic rounding keeps the expected increment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SoilColumn", "SECONDS_PER_YEAR"]

SECONDS_PER_YEAR = 365.0 * 86400.0


@dataclass(frozen=True, kw_only=True)
class SoilColumn:
    """A 1-D soil column with a fixed surface temperature and an insulated bottom.

    Levels sit at depths ``dz, 2 dz, ..., depth``; the surface value is a boundary node above the
    first level and the bottom flux is zero (a mirror node below the last level).

    Shapes: temperatures are (..., levels) with any leading dimensions (members, precision arms).
    """

    depth: float = 60.0
    dz: float = 1.0
    dt: float = 1800.0
    diffusivity: float = 7e-7
    initial: float = 273.15
    surface: float = 280.0

    def __post_init__(self) -> None:
        for name in ("depth", "dz", "dt", "diffusivity"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.courant > 0.5:
            raise ValueError(
                f"D dt / dz^2 = {self.courant:.3g} > 0.5: forward Euler is unstable; lower dt"
            )

    @property
    def levels(self) -> int:
        """Number of levels, ``round(depth / dz)``."""
        return round(self.depth / self.dz)

    @property
    def courant(self) -> float:
        """The diffusion number ``c = D dt / dz^2``."""
        return self.diffusivity * self.dt / self.dz**2

    def depths(self) -> Tensor:
        """Depth of each level in metres, (levels,)."""
        return self.dz * torch.arange(1, self.levels + 1, dtype=torch.float64)

    def steps_per_year(self) -> int:
        return round(SECONDS_PER_YEAR / self.dt)

    def initial_state(self, *leading: int, dtype: torch.dtype = torch.float64) -> Tensor:
        """Uniform initial temperatures, (*leading, levels)."""
        return torch.full((*leading, self.levels), self.initial, dtype=dtype)

    def step(self, temperature: Tensor, surface: Tensor | None = None) -> Tensor:
        """One forward-Euler step; (..., levels) -> (..., levels).

        ``surface`` (..., 1) is the boundary node; by default it is built from the state
        (``T[..., :1] * 0 + T_surface``, shaped like the state so a precision sweep's leading
        dimension is kept). :meth:`run` builds it once.
        """
        if surface is None:
            surface = self.surface_node(temperature)
        above = torch.cat([surface, temperature[..., :-1]], dim=-1)
        below = torch.cat([temperature[..., 1:], temperature[..., -1:]], dim=-1)
        laplacian = above - 2.0 * temperature + below
        return temperature + self.courant * laplacian

    def surface_node(self, temperature: Tensor) -> Tensor:
        """The surface boundary value shaped (..., 1) like the state's first level."""
        return temperature[..., :1] * 0.0 + self.surface

    def run(
        self,
        temperature: Tensor,
        *,
        steps: int,
        every: int | None = None,
        state_rounding: Callable[[Tensor], Tensor] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Tensor:
        """Integrate ``steps`` steps; record every ``every`` steps (default: only the end).

        ``progress`` is called with the number of steps done after each step.

        Returns
        -------
        Tensor
            (snapshots, ..., levels); with ``every`` None one snapshot, the final state.
        """
        if temperature.shape[-1] != self.levels:
            raise ValueError(
                f"temperature has {temperature.shape[-1]} levels, the column has {self.levels}"
            )
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if steps == 0:
            return temperature.unsqueeze(0)
        every = steps if every is None else every
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        record = []
        surface = self.surface_node(temperature)
        for n in range(1, steps + 1):
            temperature = self.step(temperature, surface)
            if state_rounding is not None:
                temperature = state_rounding(temperature)
            if n % every == 0:
                record.append(temperature)
            if progress is not None:
                progress(n)
        if not record:
            return temperature.unsqueeze(0)
        return torch.stack(record)

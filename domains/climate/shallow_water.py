"""Wind-driven shallow-water flow over a ridge in a zonal channel (the study's turbulent testbed).

Vector-invariant shallow-water equations on an f-plane, after ShallowWaters.jl (Klöwer) as used
by Paxton et al. (J. Climate 35(4), 2022)::

    u_t =  q (h v) - d_x B + F_x - c_D |u| u / h - nu_4 lap^2 u
    v_t = -q (h u) - d_y B       - c_D |u| v / h - nu_4 lap^2 v
    eta_t = -d_x(u h) - d_y(v h),     h = eta + H(x),  q = (f + zeta) / h,  B = g eta + |u|^2 / 2

with the channel wind stress ``F_x = F_0 cos^2(pi (y / L_y - 1/2)) / (rho H)`` and a ridge
``H(x) = H_0 - 50 m exp(-(x - L_x/2)^2 / (2 (300 km)^2))``. Discretisation: Arakawa C-grid of
``nx x ny`` cells (periodic in x, no-slip walls at y = 0 and L_y, with mirrored ghost velocities),
centred differences, vorticity and fluxes averaged to u and v points, and classical RK4 with
``dt = cfl * dx / sqrt(g H_0)`` (283 s at the default 20 km grid).

Grid layout (``...`` are leading dimensions: members, precision arms):

* ``eta`` (..., ny, nx) at cell centres ``((i + 1/2) dx, (j + 1/2) dx)``;
* ``u`` (..., ny, nx) at east faces ``((i + 1) dx, (j + 1/2) dx)``;
* ``v`` (..., ny + 1, nx) at south faces ``((i + 1/2) dx, j dx)``; rows 0 and ny are the walls and
  stay 0;
* vorticity at corners ``((i + 1) dx, j dx)``, (..., ny + 1, nx).

Constant fields (depth, forcing) are built once in float64 and enter the arithmetic as constants;
under :func:`sciflow.precision.emulate` every op that uses them is rounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ShallowWater", "SWState"]

DAY = 86400.0


@dataclass(frozen=True)
class SWState:
    """Prognostic fields: u (..., ny, nx), v (..., ny + 1, nx), eta (..., ny, nx)."""

    u: Tensor
    v: Tensor
    eta: Tensor

    def axpy(self, a: float, d: SWState) -> SWState:
        """``self + a * d`` field by field."""
        return SWState(self.u + a * d.u, self.v + a * d.v, self.eta + a * d.eta)

    def map(self, fn: Callable[[Tensor], Tensor]) -> SWState:
        return SWState(fn(self.u), fn(self.v), fn(self.eta))


@dataclass(frozen=True, kw_only=True)
class ShallowWater:
    """Configuration and integrator of the channel model (defaults: the study's settings).

    Parameters are SI: lengths in m, ``f`` in 1/s, ``wind_stress`` in Pa, ``nu4`` in m^4/s
    (None: a grid-scale damping time of ``damping_days``), ``drag`` the dimensionless quadratic
    bottom-drag coefficient.
    """

    nx: int = 100
    lx: float = 2000e3
    ly: float = 1000e3
    g: float = 10.0
    depth: float = 500.0
    ridge_height: float = 50.0
    ridge_width: float = 300e3
    latitude: float = 45.0
    wind_stress: float = 0.12
    rho: float = 1000.0
    drag: float = 1e-5
    nu4: float | None = None
    damping_days: float = 1.0
    cfl: float = 1.0

    def __post_init__(self) -> None:
        if self.nx < 4:
            raise ValueError(f"nx must be >= 4, got {self.nx}")
        ratio = self.ly / self.lx * self.nx
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 3:
            raise ValueError(
                f"ly / lx * nx = {ratio:g} must be a whole number >= 3 (square cells); got "
                f"lx={self.lx}, ly={self.ly}, nx={self.nx}"
            )
        for name in ("g", "depth", "cfl", "damping_days"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.ridge_height >= self.depth:
            raise ValueError(
                f"ridge_height={self.ridge_height} must be below depth={self.depth} (dry cells)"
            )

    # ------------------------------------------------------------------------- geometry
    @property
    def ny(self) -> int:
        return round(self.ly / self.lx * self.nx)

    @property
    def dx(self) -> float:
        return self.lx / self.nx

    @property
    def dt(self) -> float:
        """RK4 step at the configured CFL number of the gravity waves, ``cfl dx / sqrt(g H)``."""
        return self.cfl * self.dx / math.sqrt(self.g * self.depth)

    @property
    def coriolis(self) -> float:
        return 2 * 7.2921e-5 * math.sin(math.radians(self.latitude))

    @property
    def biharmonic(self) -> float:
        """nu_4: damps the grid-scale mode (lap^2 eigenvalue 64 / dx^4) in ``damping_days``."""
        if self.nu4 is not None:
            return self.nu4
        return self.dx**4 / (64 * self.damping_days * DAY)

    def steps_per_day(self) -> int:
        return max(1, round(DAY / self.dt))

    def fields(self, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Depth H at cell centres, and the wind forcing F_x / (rho H) and H at u points."""
        dx, ny, nx = self.dx, self.ny, self.nx
        x_t = (torch.arange(nx, dtype=torch.float64) + 0.5) * dx
        x_u = (torch.arange(nx, dtype=torch.float64) + 1.0) * dx
        y_t = (torch.arange(ny, dtype=torch.float64) + 0.5) * dx

        def depth_at(x: Tensor) -> Tensor:
            bump = torch.exp(-((x - self.lx / 2) ** 2) / (2 * self.ridge_width**2))
            return self.depth - self.ridge_height * bump

        h_t = depth_at(x_t).expand(ny, nx).contiguous()
        h_u = depth_at(x_u).expand(ny, nx)
        profile = torch.cos(math.pi * (y_t / self.ly - 0.5)) ** 2
        forcing = self.wind_stress * profile[:, None] / (self.rho * h_u)
        return {"H": h_t.to(device), "Fx": forcing.contiguous().to(device)}

    def rest_state(
        self,
        *leading: int,
        noise: float = 0.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> SWState:
        """Fluid at rest, with optional surface-height noise (m) to break the symmetry."""
        ny, nx = self.ny, self.nx
        eta = noise * torch.randn(*leading, ny, nx, generator=generator, dtype=torch.float64)
        return SWState(
            torch.zeros(*leading, ny, nx, dtype=dtype),
            torch.zeros(*leading, ny + 1, nx, dtype=dtype),
            eta.to(dtype),
        )

    # ----------------------------------------------------------------------- tendencies
    def tendency(self, s: SWState, fields: dict[str, Tensor]) -> SWState:
        """Right-hand side of the three equations at state ``s``."""
        u, v, eta = s.u, s.v, s.eta
        inv_dx = 1.0 / self.dx
        h = eta + fields["H"]
        h_pad = torch.cat([h[..., :1, :], h, h[..., -1:, :]], dim=-2)
        h_u = 0.5 * (h + h.roll(-1, -1))
        h_v = 0.5 * (h_pad[..., :-1, :] + h_pad[..., 1:, :])  # (ny+1, nx)
        h_q = 0.5 * (h_v + h_v.roll(-1, -1))
        flux_u = u * h_u
        flux_v = v * h_v

        # potential vorticity at corners; no-slip: mirrored u beyond the walls
        u_pad = torch.cat([-u[..., :1, :], u, -u[..., -1:, :]], dim=-2)
        zeta = ((v.roll(-1, -1) - v) - (u_pad[..., 1:, :] - u_pad[..., :-1, :])) * inv_dx
        q = (zeta + self.coriolis) / h_q

        # q (h v) at u points and -q (h u) at interior v points
        q_u = 0.5 * (q[..., :-1, :] + q[..., 1:, :])
        v_rows = flux_v[..., :-1, :] + flux_v[..., 1:, :]
        flux_v_u = 0.25 * (v_rows + v_rows.roll(-1, -1))
        q_v = 0.5 * (q[..., 1:-1, :] + q[..., 1:-1, :].roll(1, -1))
        u_cols = flux_u + flux_u.roll(1, -1)
        flux_u_v = 0.25 * (u_cols[..., :-1, :] + u_cols[..., 1:, :])

        # Bernoulli potential at centres
        u2 = u * u
        v2 = v * v
        kinetic = 0.25 * ((u2 + u2.roll(1, -1)) + (v2[..., :-1, :] + v2[..., 1:, :]))
        bernoulli = self.g * eta + kinetic

        # quadratic bottom drag with the speed averaged from centres
        speed = torch.sqrt(2.0 * kinetic)
        speed_u = 0.5 * (speed + speed.roll(-1, -1))
        speed_v = 0.5 * (speed[..., :-1, :] + speed[..., 1:, :])
        v_in = v[..., 1:-1, :]
        drag_u = (-self.drag) * speed_u * u / h_u
        drag_v = (-self.drag) * speed_v * v_in / h_v[..., 1:-1, :]

        scale = -self.biharmonic * inv_dx**4
        diff_u = scale * self._laplace_u(self._laplace_u(u))
        diff_v = scale * self._laplace_v(self._laplace_v(v))[..., 1:-1, :]

        du = q_u * flux_v_u - (bernoulli.roll(-1, -1) - bernoulli) * inv_dx
        du = du + fields["Fx"] + drag_u + diff_u
        dv_in = -(q_v * flux_u_v) - (bernoulli[..., 1:, :] - bernoulli[..., :-1, :]) * inv_dx
        dv_in = dv_in + drag_v + diff_v
        wall = v[..., :1, :]  # v is 0 on the walls and stays 0
        dv = torch.cat([wall, dv_in, wall], dim=-2)
        divergence = (flux_u - flux_u.roll(1, -1)) + (flux_v[..., 1:, :] - flux_v[..., :-1, :])
        deta = -(divergence * inv_dx)
        return SWState(du, dv, deta)

    @staticmethod
    def _laplace_u(a: Tensor) -> Tensor:
        """dx^2 times the 5-point Laplacian at u points, mirrored (no-slip) beyond the walls."""
        pad = torch.cat([-a[..., :1, :], a, -a[..., -1:, :]], dim=-2)
        ns = pad[..., :-2, :] + pad[..., 2:, :]
        ew = a.roll(1, -1) + a.roll(-1, -1)
        return (ns + ew) - 4.0 * a

    @staticmethod
    def _laplace_v(a: Tensor) -> Tensor:
        """dx^2 times the 5-point Laplacian at v points; wall rows give 0."""
        inner = a[..., 1:-1, :]
        ns = a[..., :-2, :] + a[..., 2:, :]
        ew = inner.roll(1, -1) + inner.roll(-1, -1)
        lap = (ns + ew) - 4.0 * inner
        wall = a[..., :1, :] * 0.0
        return torch.cat([wall, lap, wall], dim=-2)

    # --------------------------------------------------------------------- integration
    def step(self, s: SWState, fields: dict[str, Tensor]) -> SWState:
        """One classical RK4 step of length :attr:`dt`."""
        h = self.dt
        k1 = self.tendency(s, fields)
        k2 = self.tendency(s.axpy(0.5 * h, k1), fields)
        k3 = self.tendency(s.axpy(0.5 * h, k2), fields)
        k4 = self.tendency(s.axpy(h, k3), fields)
        total = SWState(
            k1.u + 2.0 * k2.u + 2.0 * k3.u + k4.u,
            k1.v + 2.0 * k2.v + 2.0 * k3.v + k4.v,
            k1.eta + 2.0 * k2.eta + 2.0 * k3.eta + k4.eta,
        )
        return s.axpy(h / 6.0, total)

    def run(
        self,
        state: SWState,
        *,
        steps: int,
        every: int,
        fields: dict[str, Tensor] | None = None,
        state_rounding: Callable[[Tensor], Tensor] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[SWState, SWState]:
        """Integrate ``steps`` steps, recording the fields every ``every`` steps.

        ``fields`` defaults to :meth:`fields`; build them outside
        :func:`sciflow.precision.emulate_sweep` (they carry no arm dimension).

        Returns
        -------
        (final state, record)
            ``record`` holds stacked snapshots: u (T, ..., ny, nx), v (T, ..., ny + 1, nx),
            eta (T, ..., ny, nx) with T = steps // every.
        """
        if steps < 0 or every < 1:
            raise ValueError(f"steps must be >= 0 and every >= 1, got {steps} and {every}")
        if state.u.shape[-2:] != (self.ny, self.nx):
            raise ValueError(
                f"u has grid {tuple(state.u.shape[-2:])}, the model has {(self.ny, self.nx)}"
            )
        fields = self.fields(state.u.device) if fields is None else fields
        snaps: list[SWState] = []
        for n in range(1, steps + 1):
            state = self.step(state, fields)
            if state_rounding is not None:
                state = state.map(state_rounding)
            if n % every == 0:
                snaps.append(state)
            if progress is not None:
                progress(n)
        if not snaps:
            empty = state.map(lambda t: t.new_empty((0, *t.shape)))
            return state, empty
        record = SWState(
            torch.stack([s.u for s in snaps]),
            torch.stack([s.v for s in snaps]),
            torch.stack([s.eta for s in snaps]),
        )
        return state, record

    def energy(self, s: SWState, fields: dict[str, Tensor]) -> Tensor:
        """Total energy per unit density and area, ``mean(h |u|^2 / 2 + g eta^2 / 2)``; (...,)."""
        h = s.eta + fields["H"]
        kinetic = 0.25 * (
            (s.u**2 + s.u.roll(1, -1) ** 2) + (s.v[..., :-1, :] ** 2 + s.v[..., 1:, :] ** 2)
        )
        return (h * kinetic + 0.5 * self.g * s.eta**2).mean(dim=(-2, -1))

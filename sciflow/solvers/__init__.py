"""ODE and SDE samplers and log-likelihoods for velocity fields, on one time loop.

A velocity field is anything called as ``f(x, t, *, cond=None, batch=None)`` with ``t`` one value per
sample (per graph for ragged batches).

The time loop: :func:`time_loop` walks a grid of Python floats (no host-device synchronisation),
calls an *advance* function once per :class:`Interval` and then every *hook* on the new state.
Everything that marches from the source to the data runs on it: the fixed-step ODE solvers, the
SDE sampler (:func:`sde_sample`), FlowChef steering (:mod:`sciflow.steering`), the particle
searches (:mod:`sciflow.particles`); precision emulation (:mod:`sciflow.precision`) and trajectory
recording are hooks. The grid is :func:`uniform_grid`, t_i = t0 + (t1 - t0) i / n.

Solvers (after torchdiffeq's ``_ButcherTableau`` and diffrax): an explicit Runge-Kutta method is a
:class:`ButcherTableau` on one base class, :class:`RungeKutta`, with an ``order``, the field
``evals`` per step and a ``step``; ``integrate`` runs it on the uniform grid. The adaptive
:class:`Dopri5` (Dormand & Prince 1980) is the same base with an embedded error estimate and a step
controller; it proposes its own intervals, accepts or rejects them on the host, and calls the same
hooks. All are in :data:`SOLVERS`, which is all :func:`odeint` looks at.

Stochastic sampling: :class:`SDEStep` is the one Euler-Maruyama step of the SDE with the flow's
marginals (any Gaussian source N(m, s^2 I)); :func:`sde_sample` and the particle searches run it.

Convention: integrate from t0 = 0 (source) to t1 = 1 (data); t1 < t0 integrates backwards.
"""

from sciflow.solvers.likelihood import log_likelihood, standard_normal_log_prob
from sciflow.solvers.loop import Field, Interval, StepHook, time_loop, uniform_grid
from sciflow.solvers.ode import ODESolution, odeint
from sciflow.solvers.runge_kutta import (
    RK4,
    SOLVERS,
    ButcherTableau,
    Dopri5,
    Euler,
    Heun,
    Midpoint,
    RungeKutta,
    Solver,
)
from sciflow.solvers.sde import SDEStep, sde_sample

__all__ = [
    "Field",
    "Interval",
    "StepHook",
    "uniform_grid",
    "time_loop",
    "ButcherTableau",
    "Solver",
    "RungeKutta",
    "Euler",
    "Midpoint",
    "Heun",
    "RK4",
    "Dopri5",
    "SOLVERS",
    "ODESolution",
    "odeint",
    "SDEStep",
    "sde_sample",
    "log_likelihood",
    "standard_normal_log_prob",
]

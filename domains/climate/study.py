"""The low-precision study: significand bits x {round-to-nearest, stochastic} on every testbed.

After Paxton et al. (J. Climate 35(4), 2022). Each testbed runs once as a batch of precision
"arms" under :func:`sciflow.precision.emulate_sweep` (every op rounded, per arm): the float64
reference, a few float64 null runs from perturbed initial conditions, and ``k`` significand bits
with the container's exponent range (rpe's "k sbits") for each ``k`` and rounding. The figure of
merit is the Wasserstein test (:func:`sciflow.precision.rounding_error_test`): W1 of each variable
(per grid point for fields) between an arm and the reference, over the mean null W1; an arm is
indistinguishable from float64 while that ratio stays within the null's own range (the largest
null run's W1 over the mean).

* :func:`lorenz_sweep` -- Lorenz 1963 ensembles, x, y, z.
* :func:`heat_sweep` -- the soil column; W1 per level of the last year's daily temperatures, and
  the depth profiles of float64/32/16 and bfloat16 (true exponent ranges) with both roundings.
* :func:`shallow_water_sweep` -- the channel over a ridge; eta, u, v per grid point.
* :func:`flow_sweep` -- a trained 2-D flow-matching sampler under :func:`~sciflow.precision.emulate`:
  W1 of samples and the same-noise deviation ``mean ||x_low - x_64||``.
* :func:`stagnation` -- many tiny increments: RN stands still, SR keeps the expectation.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sciflow.precision import (
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    FLOAT64,
    ROUNDINGS,
    Format,
    Precision,
    emulate,
    emulate_sweep,
    round_module_,
    rounding_error_test,
    same_noise_deviation,
    sbits,
)

from .heat import SoilColumn
from .lorenz import Lorenz63, lorenz_ensemble
from .shallow_water import DAY, ShallowWater, SWState

__all__ = [
    "SweepRow",
    "TestbedSweep",
    "HeatProfiles",
    "FlowRow",
    "FlowSweep",
    "Stagnation",
    "sweep_arms",
    "lorenz_sweep",
    "heat_sweep",
    "shallow_water_sweep",
    "flow_sweep",
    "stagnation",
    "PAPER_CLAIMS",
]

REFERENCE = Precision(FLOAT64)

#: what the seed study and its follow-ups state, for the comparison table
PAPER_CLAIMS: dict[str, str] = {
    "lorenz": "23 sbits more than enough; 10 sbits often sufficient (Paxton et al. 2022)",
    "heat": (
        "float32 RN stops warming below ~20-30 m, float16 RN does not warm; float32 SR matches "
        "float64, float16 SR noisy but warms (HeatSolver.jl, shown in Paxton et al. 2022)"
    ),
    "shallow_water": "10 sbits often sufficient; SR reduces the error at low precision",
    "flow": "(not in the paper) flow-matching ODE samplers: no chaos, so errors do not grow",
}

Progress = Callable[[str], None] | None


# ----------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SweepRow:
    """One arm x variable of a sweep: W1 to the reference, the null W1 and their ratio."""

    arm: str
    sbits: int
    rounding: str
    variable: str
    w1: float
    null: float
    ratio: float
    limit: float  # the ratio of the worst null run: indistinguishable while ratio <= limit


@dataclass(frozen=True)
class TestbedSweep:
    """All rows of one testbed's sweep, with what was run (``nulls``: float64 null runs)."""

    testbed: str
    variables: tuple[str, ...]
    rows: tuple[SweepRow, ...]
    settings: str
    seconds: float
    nulls: int

    def ratios(self, rounding: str, variable: str) -> list[tuple[int, float]]:
        """(sbits, W1 / null) for one rounding and variable, by increasing sbits."""
        pts = [(r.sbits, r.ratio) for r in self.rows if r.rounding == rounding and r.variable == variable]
        return sorted(pts)

    def outside(self, rounding: str, bits: int) -> list[str]:
        """Variables whose W1 at ``bits`` is beyond the null's range (ratio > limit)."""
        return [
            r.variable
            for r in self.rows
            if r.rounding == rounding and r.sbits == bits and not r.ratio <= r.limit
        ]

    def threshold(self, rounding: str) -> int | None:
        """Fewest sbits from which on the arms behave like one more float64 null run.

        A float64 run exceeds the largest of ``nulls`` null W1s by chance with probability
        1/(nulls + 1). The threshold is the smallest k such that every variable at k is within
        the null's range and, over all bits >= k, the fraction of (bits, variable) cells beyond it
        is at most that chance rate. None when no k qualifies.
        """
        bits = sorted({r.sbits for r in self.rows if r.rounding == rounding})
        chance = 1.0 / (self.nulls + 1)
        for k in bits:
            if self.outside(rounding, k):
                continue
            tail = [r for r in self.rows if r.rounding == rounding and r.sbits >= k]
            beyond = sum(not r.ratio <= r.limit for r in tail)
            if beyond <= chance * len(tail):
                return k
        return None


@dataclass(frozen=True)
class HeatProfiles:
    """Final soil temperatures (K) by depth for named arms (float64, float32, float16, bfloat16)."""

    depths: Tensor
    profiles: dict[str, Tensor]
    years: float
    initial: float = 273.15  # the soil's initial temperature (K)


@dataclass(frozen=True)
class FlowRow:
    """A flow sampler under one precision: sample W1 and same-noise deviation from float64."""

    arm: str
    sbits: int
    rounding: str
    mode: str  # "emulate" (every op) or "state" (state after each step only)
    w1: float
    deviation: float


@dataclass(frozen=True)
class FlowSweep:
    """Flow-sampler sweep, the float64-vs-float64 null and the sampler's settings."""

    rows: tuple[FlowRow, ...]
    null_w1: float
    settings: str
    seconds: float

    def series(self, mode: str, rounding: str) -> list[FlowRow]:
        """The rows of one emulation mode and rounding, by increasing sbits."""
        rows = (r for r in self.rows if r.mode == mode and r.rounding == rounding)
        return sorted(rows, key=lambda r: r.sbits)


@dataclass(frozen=True)
class Stagnation:
    """Mean and spread of ``x_0 + sum of n increments`` in a format, per rounding, by step."""

    fmt: str
    increment: float
    steps: Tensor  # (S,)
    exact: Tensor  # (S,)
    mean: dict[str, Tensor]  # rounding -> (S,)
    spread: dict[str, Tensor]  # rounding -> (S,) standard deviation over members


# -------------------------------------------------------------------------------------- arms
def sweep_arms(
    bits: Sequence[int], roundings: Sequence[str] = ROUNDINGS, *, nulls: int = 0
) -> tuple[Precision, ...]:
    """The reference, ``nulls`` more float64 arms, then sbits(k) for each k and rounding."""
    for k in bits:
        if not 1 <= k <= 52:
            raise ValueError(f"sbits {k} is out of range; expected 1..52")
    for r in roundings:
        if r not in ROUNDINGS:
            raise ValueError(f"rounding {r!r} is not one of {ROUNDINGS}")
    arms = [REFERENCE] * (1 + nulls)
    arms += [Precision(sbits(k), r) for k in bits for r in roundings]
    return tuple(arms)


def _rows_for(
    arms: Sequence[Precision],
    first: int,
    samples: Callable[[int], dict[str, Tensor]],
    nulls: Sequence[int],
) -> list[SweepRow]:
    """Rounding-error rows for arms[first:], with ``samples(k)`` -> {variable: (N, *S)}."""
    reference = samples(0)
    null_samples = [samples(j) for j in nulls]
    rows = []
    for k in range(first, len(arms)):
        arm = arms[k]
        got = samples(k)
        for name, values in got.items():
            res = rounding_error_test(values, reference[name], [n[name] for n in null_samples])
            rows.append(
                SweepRow(
                    arm=arm.name,
                    sbits=arm.fmt.sbits,
                    rounding=arm.rounding,
                    variable=name,
                    w1=float(res.w1.mean()),
                    null=float(res.null.mean()),
                    ratio=res.ratio,
                    limit=res.limit,
                )
            )
    return rows


def _say(progress: Progress, text: str) -> None:
    if progress is not None:
        progress(text)


# ------------------------------------------------------------------------------------ Lorenz
def lorenz_sweep(
    *,
    bits: Sequence[int] = tuple(range(4, 24)),
    roundings: Sequence[str] = ROUNDINGS,
    members: int = 10,
    steps: int = 10_000,
    spinup: int = 1_000,
    every: int = 10,
    nulls: int = 4,
    perturbation: float = 1e-3,
    seed: int = 0,
    progress: Progress = None,
) -> TestbedSweep:
    """Lorenz 1963 climate (x, y, z over time and members) per precision arm.

    Members start on the attractor (a float64 spin-up); null arms start from the same states plus
    N(0, ``perturbation``^2) noise and run in float64.
    """
    t0 = time.perf_counter()
    model = Lorenz63()
    g = torch.Generator().manual_seed(seed)
    start = model.run(lorenz_ensemble(members, generator=g), steps=1, spinup=spinup)[-1]
    arms = sweep_arms(bits, roundings, nulls=nulls)
    state = start.expand(len(arms), -1, -1).clone()
    state[1 : 1 + nulls] += perturbation * torch.randn(
        nulls, members, 3, generator=g, dtype=torch.float64
    )
    _say(progress, f"lorenz: {len(arms)} arms x {members} members, {steps} RK4 steps")
    with emulate_sweep(arms, generator=torch.Generator().manual_seed(seed + 1)):
        traj = model.run(state, steps=steps, every=every)  # (T, K, M, 3)

    def samples(k: int) -> dict[str, Tensor]:
        return {v: traj[:, k, :, i].reshape(-1) for i, v in enumerate("xyz")}

    rows = _rows_for(arms, 1 + nulls, samples, range(1, 1 + nulls))
    settings = (
        f"sigma 10, rho 28, beta 8/3, RK4 dt 0.01; {members} members from the attractor, "
        f"{steps} steps recorded every {every} after {spinup} float64 spin-up steps; "
        f"{nulls} null runs with N(0, {perturbation:g}^2) initial perturbations"
    )
    return TestbedSweep("lorenz", ("x", "y", "z"), tuple(rows), settings,
                        time.perf_counter() - t0, nulls)


# -------------------------------------------------------------------------------------- heat
PROFILE_FORMATS: tuple[Format, ...] = (FLOAT32, FLOAT16, BFLOAT16)


def heat_sweep(
    *,
    bits: Sequence[int] = tuple(range(4, 24)),
    roundings: Sequence[str] = ROUNDINGS,
    years: float = 100.0,
    nulls: int = 3,
    perturbation: float = 0.01,
    seed: int = 0,
    column: SoilColumn | None = None,
    progress: Progress = None,
) -> tuple[TestbedSweep, HeatProfiles]:
    """The soil column for ``years``: per-level W1 of the last year's daily temperatures.

    Besides the sbits arms, the batch holds float32, float16 and bfloat16 with their own exponent
    ranges for the depth-profile figure. Null arms start from N(0, ``perturbation``^2) K noise.
    """
    t0 = time.perf_counter()
    column = column or SoilColumn()
    profile_arms = tuple(Precision(f, r) for f in PROFILE_FORMATS for r in roundings)
    sweep = sweep_arms(bits, roundings, nulls=nulls)
    arms = sweep + profile_arms
    g = torch.Generator().manual_seed(seed)
    state = column.initial_state(len(arms))
    state[1 : 1 + nulls] += perturbation * torch.randn(nulls, column.levels, generator=g,
                                                       dtype=torch.float64)
    per_year = column.steps_per_year()
    total = max(int(round(years * per_year)), per_year)
    per_day = max(1, round(DAY / column.dt))
    _say(progress, f"heat: {len(arms)} arms, {total} forward-Euler steps ({years:g} years)")
    with emulate_sweep(arms, generator=torch.Generator().manual_seed(seed + 1)):
        state = column.run(state, steps=total - per_year)[-1]
        last_year = column.run(state, steps=per_year, every=per_day)  # (365, K, levels)

    def samples(k: int) -> dict[str, Tensor]:
        return {"T": last_year[:, k, :]}

    rows = _rows_for(sweep, 1 + nulls, samples, range(1, 1 + nulls))
    final = last_year[-1]
    profiles = {"float64": final[0].clone()}  # clones: not views keeping the whole year alive
    for j, arm in enumerate(profile_arms):
        profiles[arm.name] = final[len(sweep) + j].clone()
    settings = (
        f"depth {column.depth:g} m, dz {column.dz:g} m, dt {column.dt:g} s, D {column.diffusivity:g}"
        f" m^2/s, {column.initial} K soil, {column.surface} K surface, insulated bottom, forward "
        f"Euler, {years:g} years; W1 per level over the daily values of the last year; "
        f"{nulls} null runs with N(0, {perturbation:g}^2) K initial noise"
    )
    result = TestbedSweep("heat", ("T",), tuple(rows), settings, time.perf_counter() - t0, nulls)
    return result, HeatProfiles(column.depths(), profiles, years, column.initial)


# ----------------------------------------------------------------------------- shallow water
def spun_up_state(
    model: ShallowWater, *, days: float, seed: int = 0, progress: Progress = None
) -> SWState:
    """Spin the channel up from rest (1 mm surface noise) in float64 for ``days``."""
    g = torch.Generator().manual_seed(seed)
    state = model.rest_state(noise=1e-3, generator=g)
    steps = int(round(days * model.steps_per_day()))
    _say(progress, f"shallow water: {days:g}-day float64 spin-up ({steps} RK4 steps)")
    state, _ = model.run(state, steps=steps, every=max(steps, 1))
    return state


def shallow_water_sweep(
    *,
    bits: Sequence[int] = (6, 8, 10, 12, 16, 23),
    roundings: Sequence[str] = ROUNDINGS,
    nx: int = 50,
    spinup_days: float = 200.0,
    days: float = 30.0,
    every_hours: float = 12.0,
    nulls: int = 3,
    perturbation: float = 1e-3,
    seed: int = 0,
    start: SWState | None = None,
    progress: Progress = None,
) -> tuple[TestbedSweep, dict[str, dict[str, Tensor]]]:
    """Climatologies of eta, u, v over ``days`` after a float64 spin-up, per grid point.

    Returns the sweep and the time-mean fields {arm name: {"eta", "u", "v"}} of the reference and
    the arms. Null arms start with N(0, ``perturbation``^2) m added to eta.
    """
    t0 = time.perf_counter()
    model = ShallowWater(nx=nx)
    if start is None:
        start = spun_up_state(model, days=spinup_days, seed=seed, progress=progress)
    arms = sweep_arms(bits, roundings, nulls=nulls)
    k = len(arms)
    g = torch.Generator().manual_seed(seed + 2)
    state = start.map(lambda t: t.expand(k, *t.shape).clone())
    state.eta[1 : 1 + nulls] += perturbation * torch.randn(
        nulls, *start.eta.shape, generator=g, dtype=torch.float64
    )
    steps = int(round(days * model.steps_per_day()))
    every = max(1, int(round(every_hours * 3600 / model.dt)))
    _say(progress, f"shallow water: {k} arms, {steps} RK4 steps ({days:g} days), nx={nx}")
    fields = model.fields()  # constants, built outside the sweep (they have no arm dimension)
    with emulate_sweep(arms, generator=torch.Generator().manual_seed(seed + 1)):
        _, record = model.run(state, steps=steps, every=every, fields=fields)

    def samples(j: int) -> dict[str, Tensor]:
        # v on the walls is 0 by construction: only interior rows are samples
        return {"eta": record.eta[:, j], "u": record.u[:, j], "v": record.v[:, j, 1:-1, :]}

    rows = _rows_for(arms, 1 + nulls, samples, range(1, 1 + nulls))
    means = {
        ("float64" if j == 0 else arms[j].name): {
            "eta": record.eta[:, j].mean(0),
            "u": record.u[:, j].mean(0),
            "v": record.v[:, j].mean(0),
        }
        for j in [0, *range(1 + nulls, k)]
    }
    settings = (
        f"{model.nx} x {model.ny} C-grid ({model.dx / 1e3:g} km), Lx {model.lx / 1e3:g} km, "
        f"Ly {model.ly / 1e3:g} km, g {model.g:g}, H {model.depth:g} m, 50 m ridge, f-plane 45N, "
        f"wind {model.wind_stress:g} Pa, drag {model.drag:g}, biharmonic {model.biharmonic:.3g} "
        f"m^4/s, RK4 dt {model.dt:.0f} s; {spinup_days:g}-day float64 spin-up, then {days:g} days "
        f"sampled every {every_hours:g} h; W1 per grid point; {nulls} null runs with "
        f"N(0, {perturbation:g}^2) m eta perturbations"
    )
    sweep = TestbedSweep(
        "shallow_water", ("eta", "u", "v"), tuple(rows), settings, time.perf_counter() - t0, nulls
    )
    return sweep, means


# -------------------------------------------------------------------------------------- flow
def flow_sweep(
    *,
    bits: Sequence[int] = tuple(range(4, 24)),
    roundings: Sequence[str] = ROUNDINGS,
    train_steps: int = 1500,
    samples: int = 2000,
    method: str = "euler",
    steps: int = 32,
    seed: int = 0,
    progress: Progress = None,
) -> FlowSweep:
    """A trained 8-gaussians -> moons flow, sampled under each precision.

    The model is trained in float32 (:func:`sciflow.toy.train_toy`), then copied to float64. Per
    arm its weights are rounded to the format and :func:`sciflow.solvers.odeint` runs under
    ``emulate`` ("emulate" rows), or in float64 with only the state rounded after each step
    (``step_hook``, "state" rows). Reported: W1 between the arm's samples and float64 samples from
    independent noise (beside the float64-vs-float64 null with that noise), and the same-noise
    deviation ``mean ||x_low - x_64||``, an upper bound on W1 to the same-noise float64 samples.
    """
    from sciflow.datasets.toy2d import TOY2D
    from sciflow.metrics import wasserstein1
    from sciflow.precision import StateRounding
    from sciflow.solvers import odeint
    from sciflow.domains.toy import Config as ToyConfig
    from sciflow.domains.toy import train as train_toy

    t0 = time.perf_counter()
    spec = ToyConfig()
    _say(progress, f"flow: training {spec.source} -> {spec.target} for {train_steps} steps")
    model = train_toy(spec.replace(train={"steps": train_steps, "seed": seed, "progress": False})).net
    model64 = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(seed + 10)
    noise = TOY2D[spec.source](samples, generator=g).double()
    other = TOY2D[spec.source](samples, generator=g).double()
    with torch.no_grad():
        ref = odeint(model64, noise, method=method, steps=steps).x
        ref_other = odeint(model64, other, method=method, steps=steps).x
    null = wasserstein1(ref, ref_other)
    rows = []
    arms = sweep_arms(bits, roundings)[1:]
    _say(progress, f"flow: {len(arms)} arms x 2 modes, {method} with {steps} steps")
    for arm in arms:
        low = round_module_(copy.deepcopy(model64), arm.fmt, rounding="nearest")
        gen = torch.Generator().manual_seed(seed + 20)
        with torch.no_grad(), emulate(arm.fmt, rounding=arm.rounding, generator=gen):
            x = odeint(low, noise, method=method, steps=steps).x
        hook = StateRounding(arm.fmt, arm.rounding, torch.Generator().manual_seed(seed + 21))
        with torch.no_grad():
            y = odeint(model64, noise, method=method, steps=steps, step_hook=hook).x
        for mode, out in (("emulate", x), ("state", y)):
            finite = bool(torch.isfinite(out).all())
            rows.append(
                FlowRow(
                    arm=arm.name,
                    sbits=arm.fmt.sbits,
                    rounding=arm.rounding,
                    mode=mode,
                    w1=wasserstein1(out, ref_other) if finite else math.inf,
                    deviation=same_noise_deviation(out, ref) if finite else math.inf,
                )
            )
    settings = (
        f"{spec.source} -> {spec.target}, MLP {spec.layers}x{spec.hidden}, {train_steps} training "
        f"steps (float32, EMA); sampling: {method} with {steps} steps, {samples} samples, float64 "
        f"container; weights rounded to the format (round-to-nearest) in 'emulate' rows"
    )
    return FlowSweep(tuple(rows), null, settings, time.perf_counter() - t0)


# -------------------------------------------------------------------------------- stagnation
def stagnation(
    *,
    fmt: Format = FLOAT16,
    start: float = 1.0,
    increment: float = 1e-4,
    steps: int = 2000,
    members: int = 200,
    record: int = 50,
    seed: int = 0,
) -> Stagnation:
    """``x <- x + increment`` ``steps`` times in ``fmt``, emulated, for RN and SR ensembles.

    With ``increment`` below half the gap at ``start`` (float16 at 1: 2^-11), round-to-nearest
    returns x every time; stochastic rounding moves up with probability increment/gap, so the mean
    follows ``start + n * increment``.
    """
    if steps < 1 or members < 1:
        raise ValueError(f"steps and members must be >= 1, got {steps} and {members}")
    every = max(1, steps // record)
    marks = torch.arange(every, steps + 1, every)
    mean: dict[str, Tensor] = {}
    spread: dict[str, Tensor] = {}
    for rounding in ROUNDINGS:
        x = torch.full((members,), start, dtype=torch.float64)
        snaps = []
        gen = torch.Generator().manual_seed(seed)
        with emulate(fmt, rounding=rounding, generator=gen):
            for n in range(1, steps + 1):
                x = x + increment
                if n % every == 0:
                    snaps.append(x)
        traj = torch.stack(snaps)  # (S, members)
        mean[rounding] = traj.mean(dim=1)
        spread[rounding] = traj.std(dim=1) if members > 1 else torch.zeros(len(snaps))
    return Stagnation(
        fmt=fmt.name,
        increment=increment,
        steps=marks,
        exact=start + marks.double() * increment,
        mean=mean,
        spread=spread,
    )

"""The testbed sweeps: significand bits x {round-to-nearest, stochastic} on each model.

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

The flow sampler's sweep is :func:`.flow.flow_sweep`, the stagnation of tiny increments
:func:`.increments.stagnation`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from sciflow.errors import InputError
from sciflow.outputs import ensure_finite
from sciflow.precision import (
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    FLOAT64,
    ROUNDINGS,
    Format,
    Precision,
    emulate_sweep,
    rounding_error_test,
    sbits,
)

from .heat import SoilColumn
from .lorenz import Lorenz63, lorenz_ensemble
from .results import HeatProfiles, SweepRow, TestbedSweep
from .shallow_water import DAY, ShallowWater, SWState
from .uncertainty import RESAMPLES, block_units, paired_w1, resample_counts

__all__ = [
    "REFERENCE",
    "LORENZ_BLOCK_TIME",
    "HEAT_BLOCK_DAYS",
    "SW_BLOCK_DAYS",
    "PAPER_CLAIMS",
    "PROFILE_FORMATS",
    "Progress",
    "sweep_arms",
    "lorenz_sweep",
    "heat_sweep",
    "spun_up_state",
    "shallow_water_sweep",
]

REFERENCE = Precision(FLOAT64)

#: bootstrap blocks, in each testbed's own time: longer than the time over which its samples
#: stay correlated (the Lorenz attractor decorrelates in about one time unit)
LORENZ_BLOCK_TIME = 10.0  # model time units
HEAT_BLOCK_DAYS = 30
SW_BLOCK_DAYS = 2.0

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

#: a callable that reports a line of progress, or None for silence
Progress = Callable[[str], None] | None


def sweep_arms(
    bits: Sequence[int], roundings: Sequence[str] = ROUNDINGS, *, nulls: int = 0
) -> tuple[Precision, ...]:
    """The reference, ``nulls`` more float64 arms, then sbits(k) for each k and rounding."""
    for k in bits:
        if not 1 <= k <= 52:
            raise InputError(f"sbits {k} is out of range; expected 1..52")
    for r in roundings:
        if r not in ROUNDINGS:
            raise InputError(f"rounding {r!r} is not one of {ROUNDINGS}")
    arms = [REFERENCE] * (1 + nulls)
    arms += [Precision(sbits(k), r) for k in bits for r in roundings]
    return tuple(arms)


def _rows_for(
    testbed: str,
    arms: Sequence[Precision],
    first: int,
    samples: Callable[[int], dict[str, Tensor]],
    nulls: Sequence[int],
    *,
    units: Tensor | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
    progress: Progress = None,
) -> tuple[list[SweepRow], Tensor | None, Tensor | None]:
    """Rounding-error rows for arms[first:], with ``samples(k)`` -> {variable: (N, *S)}, and
    their bootstrap: (R, rows) ratios and limits over resamples of ``units`` (N,) labels of the
    sample axis (:mod:`.uncertainty`; None: no bootstrap).

    The float64 reference and null runs must be finite (NonFiniteError naming the testbed, the
    variable and the first bad record otherwise); a low-precision arm may blow up, which its row
    then shows as inf or nan.
    """
    reference = samples(0)
    null_samples = [samples(j) for j in nulls]
    for which, got in [("reference", reference)] + [(f"null run {j}", n)
                                                    for j, n in zip(nulls, null_samples)]:
        for name, values in got.items():
            ensure_finite(values, f"{testbed}: float64 {which}, {name}", axis_name="record",
                          hint="the float64 model itself blew up: check its settings (time step, "
                               "grid) before sweeping precisions")
    counts = None if units is None else resample_counts(
        units, resamples, generator=torch.Generator().manual_seed(seed + 3))
    null_mean: dict[str, Tensor] = {}
    null_limit: dict[str, Tensor] = {}
    if counts is not None:
        for name, ref in reference.items():
            each = torch.stack([paired_w1(n[name], ref, units, counts).reshape(resamples, -1).mean(1)
                                for n in null_samples])  # (K, R)
            null_mean[name] = each.mean(0)
            null_limit[name] = each.max(0).values / null_mean[name]
    rows = []
    boot_ratio, boot_limit = [], []
    with _steps_bar(progress if counts is not None else None, len(arms) - first,
                    f"{testbed} bootstrap", unit="arm") as bar:
        for k in range(first, len(arms)):
            arm = arms[k]
            got = samples(k)
            for name, values in got.items():
                res = rounding_error_test(values, reference[name],
                                          [n[name] for n in null_samples])
                rows.append(SweepRow(arm=arm.name, sbits=arm.fmt.sbits, rounding=arm.rounding,
                                     variable=name, w1=float(res.w1.mean()),
                                     null=float(res.null.mean()), ratio=res.ratio,
                                     limit=res.limit))
                if counts is not None:
                    w1 = paired_w1(values, reference[name], units, counts).reshape(resamples, -1)
                    boot_ratio.append(w1.mean(1) / null_mean[name])
                    boot_limit.append(null_limit[name])
            bar.update(1)
    if counts is None:
        return rows, None, None
    return rows, torch.stack(boot_ratio, dim=1), torch.stack(boot_limit, dim=1)


def _units_text(units: Tensor, what: str) -> str:
    return f"{int(units.max()) + 1} resampling units ({what})"


def _scored(
    testbed: str,
    variables: tuple[str, ...],
    arms: Sequence[Precision],
    nulls: int,
    samples: Callable[[int], dict[str, Tensor]],
    *,
    units: Tensor,
    resampling: str,
    settings: str,
    started: float,
    resamples: int,
    seed: int,
    progress: Progress,
) -> TestbedSweep:
    """A testbed's result: arms[1 + nulls:] scored against the reference (arm 0) and the null
    runs (arms 1..nulls) by :func:`_rows_for`, bootstrapped over ``units`` (``resampling`` says
    what they are); ``started`` is the ``time.perf_counter()`` of the testbed's start."""
    rows, boot_ratio, boot_limit = _rows_for(testbed, arms, 1 + nulls, samples,
                                             range(1, 1 + nulls), units=units,
                                             resamples=resamples, seed=seed, progress=progress)
    return TestbedSweep(testbed, variables, tuple(rows), settings, time.perf_counter() - started,
                        nulls, boot_ratio, boot_limit, int(units.max()) + 1,
                        _units_text(units, resampling))


def _say(progress: Progress, text: str) -> None:
    if progress is not None:
        progress(text)


def _steps_bar(progress: Progress, total: int, desc: str, unit: str = "step") -> Any:
    """A :func:`sciflow.progress.progress` bar over model steps, shown when ``progress`` is."""
    from sciflow.progress import progress as bar

    return bar(total=total, desc=desc, unit=unit, enabled=progress is not None)


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
    resamples: int = RESAMPLES,
    progress: Progress = None,
) -> TestbedSweep:
    """Lorenz 1963 climate (x, y, z over time and members) per precision arm.

    Members start on the attractor (a float64 spin-up); null arms start from the same states plus
    N(0, ``perturbation``^2) noise and run in float64. The bootstrap resamples (member, block of
    :data:`LORENZ_BLOCK_TIME` time units) pairs ``resamples`` times (:mod:`.uncertainty`).
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
    with _steps_bar(progress, steps, "lorenz") as bar, \
            emulate_sweep(arms, generator=torch.Generator().manual_seed(seed + 1)):
        traj = model.run(state, steps=steps, every=every,
                         progress=lambda n: bar.update(1))  # (T, K, M, 3)

    def samples(k: int) -> dict[str, Tensor]:
        return {v: traj[:, k, :, i].reshape(-1) for i, v in enumerate("xyz")}

    block = max(1, round(LORENZ_BLOCK_TIME / (every * model.dt)))
    units = block_units(traj.shape[0], block, members)
    blocks = (int(units.max()) + 1) // members
    span = traj.shape[0] // blocks * every * model.dt
    settings = (
        f"sigma 10, rho 28, beta 8/3, RK4 dt 0.01; {members} members from the attractor, "
        f"{steps} steps recorded every {every} after {spinup} float64 spin-up steps; "
        f"{nulls} null runs with N(0, {perturbation:g}^2) initial perturbations"
    )
    return _scored("lorenz", ("x", "y", "z"), arms, nulls, samples, units=units,
                   resampling=f"{members} members x {blocks} block{'s' * (blocks > 1)} of "
                              f"{span:g} time units",
                   settings=settings, started=t0, resamples=resamples, seed=seed,
                   progress=progress)


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
    resamples: int = RESAMPLES,
    progress: Progress = None,
) -> tuple[TestbedSweep, HeatProfiles]:
    """The soil column for ``years``: per-level W1 of the last year's daily temperatures.

    Besides the sbits arms, the batch holds float32, float16 and bfloat16 with their own exponent
    ranges for the depth-profile figure. Null arms start from N(0, ``perturbation``^2) K noise.
    The bootstrap resamples :data:`HEAT_BLOCK_DAYS`-day blocks of the last year.
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
    with _steps_bar(progress, total, "heat") as bar, \
            emulate_sweep(arms, generator=torch.Generator().manual_seed(seed + 1)):
        state = column.run(state, steps=total - per_year, progress=lambda n: bar.update(1))[-1]
        last_year = column.run(state, steps=per_year, every=per_day,
                               progress=lambda n: bar.update(1))  # (365, K, levels)

    def samples(k: int) -> dict[str, Tensor]:
        return {"T": last_year[:, k, :]}

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
    result = _scored("heat", ("T",), sweep, nulls, samples,
                     units=block_units(last_year.shape[0], HEAT_BLOCK_DAYS),
                     resampling=f"{HEAT_BLOCK_DAYS}-day blocks of the last year",
                     settings=settings, started=t0, resamples=resamples, seed=seed,
                     progress=progress)
    return result, HeatProfiles(column.depths(), profiles, years, column.initial)


def spun_up_state(
    model: ShallowWater, *, days: float, seed: int = 0, progress: Progress = None
) -> SWState:
    """Spin the channel up from rest (1 mm surface noise) in float64 for ``days``."""
    g = torch.Generator().manual_seed(seed)
    state = model.rest_state(noise=1e-3, generator=g)
    steps = int(round(days * model.steps_per_day()))
    _say(progress, f"shallow water: {days:g}-day float64 spin-up ({steps} RK4 steps)")
    with _steps_bar(progress, steps, "shallow water spin-up") as bar:
        state, _ = model.run(state, steps=steps, every=max(steps, 1),
                             progress=lambda n: bar.update(1))
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
    resamples: int = RESAMPLES,
    progress: Progress = None,
) -> tuple[TestbedSweep, dict[str, dict[str, Tensor]]]:
    """Climatologies of eta, u, v over ``days`` after a float64 spin-up, per grid point.

    Returns the sweep and the time-mean fields {arm name: {"eta", "u", "v"}} of the reference and
    the arms. Null arms start with N(0, ``perturbation``^2) m added to eta. The bootstrap
    resamples :data:`SW_BLOCK_DAYS`-day blocks of the record.
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
    with _steps_bar(progress, steps, "shallow water") as bar, \
            emulate_sweep(arms, generator=torch.Generator().manual_seed(seed + 1)):
        _, record = model.run(state, steps=steps, every=every, fields=fields,
                              progress=lambda n: bar.update(1))

    def samples(j: int) -> dict[str, Tensor]:
        # v on the walls is 0 by construction: only interior rows are samples
        return {"eta": record.eta[:, j], "u": record.u[:, j], "v": record.v[:, j, 1:-1, :]}

    block = max(1, round(SW_BLOCK_DAYS * 24 / every_hours))
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
    sweep = _scored("shallow_water", ("eta", "u", "v"), arms, nulls, samples,
                    units=block_units(record.eta.shape[0], block),
                    resampling=f"blocks of {block * every_hours:g} h of the record",
                    settings=settings, started=t0, resamples=resamples, seed=seed,
                    progress=progress)
    return sweep, means

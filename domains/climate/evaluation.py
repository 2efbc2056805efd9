"""Evaluating precisions: run the study's testbeds for a :class:`~.config.Config`, write nothing.

:func:`evaluate` is the domain's ``evaluate``: the climate domain has no model of its own, so
what it evaluates is each testbed model (and the trained flow sampler) under every precision
arm. It returns a frozen :class:`StudyResult`; :func:`~.runner.run_study` adds the report folder
and the caches. :func:`validate` checks a config against this machine before any work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor

from sciflow.errors import InputError
from sciflow.resources import check_memory

from .config import LORENZ_EVERY, TESTBEDS, Config
from .flow import flow_sweep, train_key
from .increments import stagnation
from .results import FlowSweep, HeatProfiles, Stagnation, TestbedSweep
from .sweeps import PROFILE_FORMATS, heat_sweep, lorenz_sweep, shallow_water_sweep

__all__ = ["StudyResult", "TestbedCache", "cache_key", "validate", "evaluate"]


class TestbedCache(Protocol):
    """Where finished testbeds are kept between runs (:class:`~.folder.StudyFolder` is one)."""

    def get(self, testbed: str, key: dict[str, Any]) -> dict[str, Any] | None: ...

    def put(self, testbed: str, key: dict[str, Any], state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class StudyResult:
    """Everything one study measured: the sweeps of lorenz / heat / shallow water (in that
    order, those that ran), the soil profiles, the shallow-water time means ({arm: {"eta", "u",
    "v"}}), the flow sweep and the stagnation run; ``reused`` names testbeds read from a cache."""

    config: Config
    sweeps: tuple[TestbedSweep, ...] = ()
    heat: HeatProfiles | None = None
    climatology: dict[str, dict[str, Tensor]] | None = None
    flow: FlowSweep | None = None
    stagnation: Stagnation | None = None
    reused: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain form (tensors inside): config, sweeps, heat, climatology, flow, stagnation."""
        return {"config": self.config.to_dict(), "sweeps": [s.to_dict() for s in self.sweeps],
                "heat": None if self.heat is None else self.heat.to_dict(),
                "climatology": self.climatology,
                "flow": None if self.flow is None else self.flow.to_dict(),
                "stagnation": None if self.stagnation is None else self.stagnation.to_dict(),
                "reused": list(self.reused)}


def cache_key(testbed: str, config: Config) -> dict[str, Any]:
    """The settings a testbed's result depends on: a cached result is reused only for an equal
    key (the seed included)."""
    c = config
    keys: dict[str, dict[str, Any]] = {
        "lorenz": {"bits": c.bits, "members": c.lorenz_members, "steps": c.lorenz_steps,
                   "nulls": c.lorenz_nulls},
        "heat": {"bits": c.bits, "years": c.heat_years},
        "shallow_water": {"bits": c.sw_bits, "nx": c.sw_nx, "spinup": c.sw_spinup_days,
                          "days": c.sw_days},
        "flow": {"bits": c.bits, "train": train_key(c.train), "samples": c.flow_samples,
                 "steps": c.flow_sample_steps, "solver": c.flow_solver},
        "stagnation": {"steps": c.stagnation_steps},
    }
    return {**keys[testbed], "seed": c.seed}


def validate(config: Config) -> None:
    """Refuse, before any work, a config whose models cannot be built or whose records would not
    fit in memory (:func:`sciflow.resources.check_memory`; the estimates are upper bounds of
    what each sweep keeps: recorded states of every arm, the flow's W1 cost matrices)."""
    from sciflow.devices import resolve_device

    from .heat import SoilColumn
    from .shallow_water import ShallowWater

    c = config
    if "flow" in c.testbeds:
        resolve_device(c.train.device, name="device (--device)")
    roundings = 2
    if "lorenz" in c.testbeds:
        arms = 1 + c.lorenz_nulls + roundings * len(c.bits)
        records = c.lorenz_steps // LORENZ_EVERY
        check_memory(2.0 * records * arms * c.lorenz_members * 3 * 8,
                     f"{records} recorded Lorenz states x {arms} arms x {c.lorenz_members} members",
                     name="lorenz_steps (--lorenz-steps)")
    if "heat" in c.testbeds:
        arms = 4 + roundings * (len(c.bits) + len(PROFILE_FORMATS))
        check_memory(2.0 * 365 * arms * SoilColumn().levels * 8, f"a year of soil profiles x {arms}"
                     " arms", name="bits (--bits)")
    if "shallow_water" in c.testbeds:
        try:
            model = ShallowWater(nx=c.sw_nx)
        except ValueError as err:
            raise InputError(f"sw_nx={c.sw_nx} (--sw-nx): {err}; use an even number >= 6") from None
        arms = 4 + roundings * len(c.sw_bits)
        steps = round(c.sw_days * model.steps_per_day())
        every = max(1, round(12 * 3600 / model.dt))
        cells = 3 * (model.ny + 1) * model.nx
        check_memory(2.0 * (steps // every + 12) * arms * cells * 8,
                     f"{steps // every} shallow-water snapshots of {arms} arms at nx={c.sw_nx}",
                     name="sw_days / sw_nx (--sw-days, --sw-nx)")
    if "flow" in c.testbeds:
        check_memory(3.0 * c.flow_samples**2 * 8, f"exact W1 between {c.flow_samples} samples",
                     name="flow_samples")


def _compute(testbed: str, c: Config, progress: Callable[[str], None] | None) -> dict[str, Any]:
    """Run one testbed; its result in plain form (what a cache stores)."""
    if testbed == "lorenz":
        return lorenz_sweep(bits=c.bits, members=c.lorenz_members, steps=c.lorenz_steps,
                            every=LORENZ_EVERY, nulls=c.lorenz_nulls, seed=c.seed,
                            progress=progress).to_dict()
    if testbed == "heat":
        sweep, profiles = heat_sweep(bits=c.bits, years=c.heat_years, seed=c.seed,
                                     progress=progress)
        return {"sweep": sweep.to_dict(), "profiles": profiles.to_dict()}
    if testbed == "shallow_water":
        sweep, means = shallow_water_sweep(bits=c.sw_bits, nx=c.sw_nx,
                                           spinup_days=c.sw_spinup_days, days=c.sw_days,
                                           seed=c.seed, progress=progress)
        return {"sweep": sweep.to_dict(), "means": means}
    if testbed == "flow":
        return flow_sweep(bits=c.bits, train=c.train, samples=c.flow_samples,
                          solver=c.flow_solver, sample_steps=c.flow_sample_steps,
                          progress=progress).to_dict()
    return stagnation(steps=c.stagnation_steps, seed=c.seed).to_dict()


def evaluate(config: Config | None = None, *, progress: Callable[[str], None] | None = print,
             cache: TestbedCache | None = None) -> StudyResult:
    """Run ``config.testbeds`` (in the order of :data:`TESTBEDS`) and return what they measured.

    ``cache`` (optional) gives back a testbed's earlier result for an equal :func:`cache_key`
    and keeps each new one as soon as it is done, so an interrupted study loses at most the
    testbed it was running. ``progress`` gets one line per stage (None: silent).
    """
    config = config if config is not None else Config()
    validate(config)
    states: dict[str, dict[str, Any]] = {}
    reused = []
    for testbed in (t for t in TESTBEDS if t in config.testbeds):
        key = cache_key(testbed, config)
        state = cache.get(testbed, key) if cache is not None else None
        if state is None:
            state = _compute(testbed, config, progress)
            if cache is not None:
                cache.put(testbed, key, state)
        else:
            reused.append(testbed)
            if progress is not None:
                progress(f"{testbed}: reusing the cached result (same settings)")
        states[testbed] = state
    sweeps = []
    if "lorenz" in states:
        sweeps.append(TestbedSweep.from_dict(states["lorenz"]))
    if "heat" in states:
        sweeps.append(TestbedSweep.from_dict(states["heat"]["sweep"]))
    if "shallow_water" in states:
        sweeps.append(TestbedSweep.from_dict(states["shallow_water"]["sweep"]))
    return StudyResult(
        config=config,
        sweeps=tuple(sweeps),
        heat=HeatProfiles.from_dict(states["heat"]["profiles"]) if "heat" in states else None,
        climatology=states["shallow_water"]["means"] if "shallow_water" in states else None,
        flow=FlowSweep.from_dict(states["flow"]) if "flow" in states else None,
        stagnation=Stagnation.from_dict(states["stagnation"]) if "stagnation" in states else None,
        reused=tuple(reused),
    )

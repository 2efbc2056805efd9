"""The names of the former ``study`` module, for code that imports them from here.

The study now lives in modules by concept: the results in :mod:`.results`, the testbed sweeps in
:mod:`.sweeps`, the flow sampler in :mod:`.flow`, the tiny increments in :mod:`.increments`.
Every name is also on the package (``from sciflow.domains.climate import lorenz_sweep``).
"""

from .flow import flow_sweep
from .increments import stagnation
from .results import FlowRow, FlowSweep, HeatProfiles, Stagnation, SweepRow, TestbedSweep
from .sweeps import (
    PAPER_CLAIMS,
    REFERENCE,
    heat_sweep,
    lorenz_sweep,
    shallow_water_sweep,
    spun_up_state,
    sweep_arms,
)

__all__ = [
    "SweepRow",
    "TestbedSweep",
    "HeatProfiles",
    "FlowRow",
    "FlowSweep",
    "Stagnation",
    "REFERENCE",
    "PAPER_CLAIMS",
    "sweep_arms",
    "lorenz_sweep",
    "heat_sweep",
    "spun_up_state",
    "shallow_water_sweep",
    "flow_sweep",
    "stagnation",
]

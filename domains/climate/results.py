"""The frozen results of the study's testbeds, and their plain form for caches and JSON.

Each result has ``to_dict()`` (tensors, numbers, strings, lists and dicts of them: what
:func:`sciflow.checkpoint.save_tensors` stores and a weights-only load reads back, so a cache can
never carry code) and ``from_dict(d)``, its exact inverse.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["SweepRow", "TestbedSweep", "HeatProfiles", "FlowRow", "FlowSweep", "Stagnation"]


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
        pts = [(r.sbits, r.ratio) for r in self.rows
               if r.rounding == rounding and r.variable == variable]
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

    def to_dict(self) -> dict[str, Any]:
        return {"testbed": self.testbed, "variables": list(self.variables),
                "rows": [dataclasses.asdict(r) for r in self.rows], "settings": self.settings,
                "seconds": float(self.seconds), "nulls": int(self.nulls)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestbedSweep:
        return cls(d["testbed"], tuple(d["variables"]), tuple(SweepRow(**r) for r in d["rows"]),
                   d["settings"], float(d["seconds"]), int(d["nulls"]))


@dataclass(frozen=True)
class HeatProfiles:
    """Final soil temperatures (K) by depth for named arms (float64, float32, float16, bfloat16).

    Shapes: depths (levels,); each profile (levels,).
    """

    depths: Tensor
    profiles: dict[str, Tensor]
    years: float
    initial: float = 273.15  # the soil's initial temperature (K)

    def to_dict(self) -> dict[str, Any]:
        return {"depths": self.depths, "profiles": dict(self.profiles),
                "years": float(self.years), "initial": float(self.initial)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeatProfiles:
        return cls(d["depths"], dict(d["profiles"]), float(d["years"]), float(d["initial"]))


@dataclass(frozen=True)
class FlowRow:
    """A flow sampler under one precision: sample W1 and same-noise deviation from float64."""

    arm: str
    sbits: int
    rounding: str
    mode: str  # "emulate" (every op) or "state" (state after each step only)
    w1: float  # inf: the arm's samples were not finite
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

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [dataclasses.asdict(r) for r in self.rows],
                "null_w1": float(self.null_w1), "settings": self.settings,
                "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowSweep:
        return cls(tuple(FlowRow(**r) for r in d["rows"]), float(d["null_w1"]), d["settings"],
                   float(d["seconds"]))


@dataclass(frozen=True)
class Stagnation:
    """Mean and spread of ``x_0 + sum of n increments`` in a format, per rounding, by step.

    Shapes: steps, exact (S,); mean and spread map a rounding to (S,) over the members.
    """

    fmt: str
    increment: float
    steps: Tensor
    exact: Tensor
    mean: dict[str, Tensor]
    spread: dict[str, Tensor]
    members: int = 200

    def to_dict(self) -> dict[str, Any]:
        return {"fmt": self.fmt, "increment": float(self.increment), "steps": self.steps,
                "exact": self.exact, "mean": dict(self.mean), "spread": dict(self.spread),
                "members": int(self.members)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stagnation:
        return cls(d["fmt"], float(d["increment"]), d["steps"], d["exact"], dict(d["mean"]),
                   dict(d["spread"]), int(d.get("members", 200)))

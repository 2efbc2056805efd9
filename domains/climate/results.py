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

    from .uncertainty import Verdict

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
    """All rows of one testbed's sweep, with what was run (``nulls``: float64 null runs).

    ``boot_ratio`` and ``boot_limit`` (R, rows) hold each row's W1 / null ratio and null limit in
    R bootstrap resamples over ``units`` independent resampling units (``resampling`` says which:
    :mod:`.uncertainty`); None for a result cached before the bootstrap.
    """

    testbed: str
    variables: tuple[str, ...]
    rows: tuple[SweepRow, ...]
    settings: str
    seconds: float
    nulls: int
    boot_ratio: Tensor | None = None
    boot_limit: Tensor | None = None
    units: int = 0
    resampling: str = ""

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

    def bits(self, rounding: str) -> list[int]:
        """The swept sbits of one rounding, increasing."""
        return sorted({r.sbits for r in self.rows if r.rounding == rounding})

    def _grid(self, rounding: str, ratio: Tensor, limit: Tensor) -> tuple[Tensor, Tensor]:
        """(within, present), both (R, bits, variables) bool, from (R, rows) ratios and limits."""
        import torch

        bits = self.bits(rounding)
        names = list(dict.fromkeys(r.variable for r in self.rows))
        within = torch.ones(ratio.shape[0], len(bits), len(names), dtype=torch.bool)
        present = torch.zeros(1, len(bits), len(names), dtype=torch.bool)
        ok = ratio <= limit  # nan (no null) and inf (blown up) count as beyond
        for i, r in enumerate(self.rows):
            if r.rounding == rounding:
                cell = (bits.index(r.sbits), names.index(r.variable))
                within[:, cell[0], cell[1]] = ok[:, i]
                present[0, cell[0], cell[1]] = True
        return within, present

    def _first(self, rounding: str, ratio: Tensor, limit: Tensor) -> Tensor:
        from .uncertainty import first_qualifying

        within, present = self._grid(rounding, ratio, limit)
        return first_qualifying(within, present, chance=1.0 / (self.nulls + 1))

    def _point(self) -> tuple[Tensor, Tensor]:
        import torch

        ratio = torch.tensor([[r.ratio for r in self.rows]], dtype=torch.float64)
        limit = torch.tensor([[r.limit for r in self.rows]], dtype=torch.float64)
        return ratio, limit

    def threshold(self, rounding: str) -> int | None:
        """Fewest sbits from which on the arms behave like one more float64 null run.

        A float64 run exceeds the largest of ``nulls`` null W1s by chance with probability
        1/(nulls + 1). The threshold is the smallest k such that every variable at k is within
        the null's range and, over all bits >= k, the fraction of (bits, variable) cells beyond it
        is at most that chance rate. None when no k qualifies.
        """
        bits = self.bits(rounding)
        index = int(self._first(rounding, *self._point())[0])
        return bits[index] if index < len(bits) else None

    def verdict(self, rounding: str) -> Verdict:
        """:meth:`threshold` with its bootstrap interval, decided by
        :data:`~.uncertainty.RULE`."""
        from .uncertainty import verdict

        point = int(self._first(rounding, *self._point())[0])
        resampled = None
        if self.boot_ratio is not None and self.boot_limit is not None:
            resampled = self._first(rounding, self.boot_ratio, self.boot_limit)
        return verdict(point, resampled, self.bits(rounding), units=self.units)

    def within_share(self) -> Tensor | None:
        """(rows,) fraction of the resamples in which each row is within the null's range."""
        if self.boot_ratio is None or self.boot_limit is None:
            return None
        return (self.boot_ratio <= self.boot_limit).double().mean(dim=0)

    def to_dict(self) -> dict[str, Any]:
        d = {"testbed": self.testbed, "variables": list(self.variables),
             "rows": [dataclasses.asdict(r) for r in self.rows], "settings": self.settings,
             "seconds": float(self.seconds), "nulls": int(self.nulls),
             "units": int(self.units), "resampling": self.resampling}
        if self.boot_ratio is not None and self.boot_limit is not None:
            d["boot_ratio"], d["boot_limit"] = self.boot_ratio, self.boot_limit
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestbedSweep:
        return cls(d["testbed"], tuple(d["variables"]), tuple(SweepRow(**r) for r in d["rows"]),
                   d["settings"], float(d["seconds"]), int(d["nulls"]), d.get("boot_ratio"),
                   d.get("boot_limit"), int(d.get("units", 0)), d.get("resampling", ""))


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
    """Flow-sampler sweep, the float64-vs-float64 null and the sampler's settings.

    ``null_w1`` is W1 between the float64 samples and one more float64 sample set from
    independent noise; ``null_each`` holds it and those of further independent sets. The
    bootstrap (over the samples: ``units`` of them) gives ``boot_deviation`` (R, rows), each
    row's same-noise deviation per resample, and ``boot_null`` (R,), the null each resample is
    judged against (one of ``null_each`` drawn at random); None for a result cached before it.
    """

    rows: tuple[FlowRow, ...]
    null_w1: float
    settings: str
    seconds: float
    null_each: tuple[float, ...] = ()
    boot_deviation: Tensor | None = None
    boot_null: Tensor | None = None
    units: int = 0

    def series(self, mode: str, rounding: str) -> list[FlowRow]:
        """The rows of one emulation mode and rounding, by increasing sbits."""
        rows = (r for r in self.rows if r.mode == mode and r.rounding == rounding)
        return sorted(rows, key=lambda r: r.sbits)

    def _first(self, mode: str, rounding: str, deviation: Tensor, null: Tensor) -> Tensor:
        from .uncertainty import first_qualifying

        picked = [i for i, r in sorted(enumerate(self.rows), key=lambda p: p[1].sbits)
                  if r.mode == mode and r.rounding == rounding]
        within = deviation[:, picked] <= null[:, None]  # (R, bits)
        return first_qualifying(within[:, :, None])

    def _point(self) -> tuple[Tensor, Tensor]:
        import torch

        dev = torch.tensor([[r.deviation for r in self.rows]], dtype=torch.float64)
        return dev, torch.tensor([self.null_w1], dtype=torch.float64)

    def threshold(self, mode: str, rounding: str) -> int | None:
        """Fewest sbits from which on every swept arm's same-noise deviation is at most the
        float64-vs-float64 sample W1; None when even the most bits do not qualify."""
        bits = [r.sbits for r in self.series(mode, rounding)]
        index = int(self._first(mode, rounding, *self._point())[0])
        return bits[index] if index < len(bits) else None

    def verdict(self, mode: str, rounding: str) -> Verdict:
        """:meth:`threshold` with its bootstrap interval, decided by
        :data:`~.uncertainty.RULE`."""
        from .uncertainty import verdict

        point = int(self._first(mode, rounding, *self._point())[0])
        resampled = None
        if self.boot_deviation is not None and self.boot_null is not None:
            resampled = self._first(mode, rounding, self.boot_deviation, self.boot_null)
        bits = [r.sbits for r in self.series(mode, rounding)]
        return verdict(point, resampled, bits, units=self.units)

    def to_dict(self) -> dict[str, Any]:
        d = {"rows": [dataclasses.asdict(r) for r in self.rows],
             "null_w1": float(self.null_w1), "settings": self.settings,
             "seconds": float(self.seconds), "null_each": [float(v) for v in self.null_each],
             "units": int(self.units)}
        if self.boot_deviation is not None and self.boot_null is not None:
            d["boot_deviation"], d["boot_null"] = self.boot_deviation, self.boot_null
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowSweep:
        return cls(tuple(FlowRow(**r) for r in d["rows"]), float(d["null_w1"]), d["settings"],
                   float(d["seconds"]), tuple(float(v) for v in d.get("null_each", ())),
                   d.get("boot_deviation"), d.get("boot_null"), int(d.get("units", 0)))


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

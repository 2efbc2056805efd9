"""How sure a verdict is: a block bootstrap of the Wasserstein test and the interval of k.

A sweep says "indistinguishable from float64 from k significand bits on" (:mod:`.results`).
That k comes from one finite run: another seed, more members or a longer record could move it.
Here each sweep is resampled: the recorded samples are grouped into independent *units* (a
Lorenz member's 10-time-unit block, a 30-day block of the soil column's last year, a 2-day
block of the shallow-water record, one sample of the flow sampler), the units are drawn with
replacement :data:`RESAMPLES` times, and every W1 (arm, null runs) is recomputed on each
resample with the same draw for all arms (a paired bootstrap). Each resample gives its own
W1 / null ratios, null limits and k, so

* a cell (one sbits x rounding x variable) is *within* the null's range when at least 95 % of the
  resamples put its ratio at or below their limit, *beyond* it when at most 5 % do, and
  undecided in between (its ratio's interval overlaps the null's range): marked ``?``;
* k carries the 90 % interval of the resampled k's (:class:`Verdict`), and the verdict is
  *decided* only under :data:`RULE`.

A resampled W1 is the W1 between weighted empirical distributions,

    W1 = int |F_a(z) - F_b(z)| dz,  F_a(z) = sum_{i: a_i <= z} w_i / sum_i w_i,

with the unit's draw count as the weight of each of its samples; computed on the pooled sorted
samples once per cell, then for all resamples by a cumulative sum (no sorting per resample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sciflow.errors import InputError, SciflowWarning

__all__ = [
    "RESAMPLES",
    "LEVEL",
    "MIN_UNITS",
    "MAX_WIDTH",
    "RULE",
    "UndecidedWarning",
    "Verdict",
    "block_units",
    "resample_counts",
    "paired_w1",
    "first_qualifying",
    "verdict",
]

#: bootstrap resamples per sweep
RESAMPLES = 200
#: the two-sided level of the interval of k (and of a cell's ratio)
LEVEL = 0.9
#: fewer independent resampling units than this cannot estimate the run's noise
MIN_UNITS = 8
#: a decided k is known to within this many significand bits (the interval's width)
MAX_WIDTH = 3

RULE = (
    f"A verdict is decided when the run has at least {MIN_UNITS} independent resampling units, "
    f"the {LEVEL:.0%} interval of k over {RESAMPLES} bootstrap resamples spans at most "
    f"{MAX_WIDTH} significand bits, and that interval does not reach 'none' (resamples in which "
    "no swept k behaves like float64) unless k itself is none. Otherwise the run is too short "
    "or too small to decide, and the table says so and why: run longer or with more members."
)


class UndecidedWarning(SciflowWarning):
    """A study verdict that its run was too short or too small to decide (see :data:`RULE`)."""


def block_units(records: int, block: int, members: int = 1) -> Tensor:
    """Unit label of each sample: ``members`` series of ``records`` samples in blocks of ``block``.

    Samples are ordered record-major (sample ``t * members + m`` is record t of member m, the
    order of ``traj[:, arm].reshape(-1)`` for a (T, arms, M) trajectory). A trailing part block
    shorter than ``block`` joins the block before it; a series shorter than ``block`` is one unit.

    Shapes: -> (records * members,) int64 labels in 0 .. units - 1, units = members * blocks.
    """
    if records < 1 or block < 1 or members < 1:
        raise InputError(f"records={records}, block={block}, members={members}: expected >= 1")
    blocks = max(1, records // block)
    t = torch.arange(records)
    per_record = torch.clamp(t // block, max=blocks - 1)  # (T,)
    m = torch.arange(members)
    return (m[None, :] * blocks + per_record[:, None]).reshape(-1)


def resample_counts(units: Tensor, resamples: int = RESAMPLES, *,
                    generator: torch.Generator | None = None) -> Tensor:
    """Bootstrap draws: each resample draws all ``U`` units with replacement; returned is how
    often each unit was drawn (the weight of each of its samples).

    Shapes: units (N,) labels in 0 .. U - 1 -> (resamples, U) float32 counts (whole numbers).
    """
    count = int(units.max()) + 1
    draws = torch.randint(count, (resamples, count), generator=generator)
    counts = torch.zeros(resamples, count)
    counts.scatter_add_(1, draws, torch.ones(resamples, count))
    return counts


def paired_w1(a: Tensor, b: Tensor, units: Tensor, counts: Tensor, *,
              chunk_elements: int = 4_000_000) -> Tensor:
    """W1 between ``a`` and ``b`` with every sample weighted by its unit's count, per resample.

    Sample i of ``a`` and sample i of ``b`` belong to unit ``units[i]`` and share its weight
    ``counts[r, units[i]]`` (a paired bootstrap: one draw of units for both). With all counts 1
    this is the exact W1 of :func:`sciflow.precision.wasserstein1_1d`. The running sums of
    whole-number weights are exact in float32 (below 2^24), which halves the time.

    Shapes: a, b (N, *S) with samples along dim 0; units (N,); counts (R, U) -> (R, *S) float64.
    """
    if a.shape != b.shape:
        raise InputError(f"paired_w1 needs paired samples; got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    n = a.shape[0]
    if units.shape != (n,):
        raise InputError(f"units has shape {tuple(units.shape)}; expected ({n},), one label per "
                         "sample")
    z = torch.cat([a, b]).to(torch.float64).reshape(2 * n, -1)  # (2N, G)
    values, order = z.sort(dim=0)
    gaps = values.diff(dim=0).to(torch.float32)  # (2N - 1, G)
    labels = torch.cat([units, units])[order]  # (2N, G): the unit of each pooled point
    sign = torch.cat([torch.ones(n), -torch.ones(n)])[order]  # +a, -b
    flat = labels.reshape(-1)
    total = counts.to(torch.float64) @ torch.bincount(units, minlength=counts.shape[1]).double()
    if float(total.max()) >= 2.0**24:  # running sums no longer exact in float32
        counts, gaps, sign = counts.double(), gaps.double(), sign.double()
    out = []
    step = max(1, chunk_elements // max(1, flat.numel()))
    for start in range(0, counts.shape[0], step):
        part = torch.index_select(counts[start:start + step], 1, flat).reshape(-1, *labels.shape)
        diff = (part * sign).cumsum(dim=1)[:, :-1].abs_()  # |F_a - F_b| * total, between points
        out.append((diff * gaps).sum(dim=1).double())
    w1 = torch.cat(out) / total[:, None]
    return w1.reshape(counts.shape[0], *a.shape[1:])


def first_qualifying(within: Tensor, present: Tensor | None = None, *,
                     chance: float = 0.0) -> Tensor:
    """Index of the fewest bits from which on the cells behave like float64, per resample.

    ``within[r, i, v]``: cell (bits i in increasing order, variable v) is within the null's
    range in resample r. Bits i qualify when every present cell at i is within and, over all
    bits >= i, at most a fraction ``chance`` of the present cells is beyond (the chance rate a
    float64 run reaches by itself; 0 for "all within").

    Shapes: within, present (R, n, V) bool -> (R,) int64 in 0 .. n (n: no bits qualify).
    """
    present = torch.ones_like(within) if present is None else present.expand_as(within)
    beyond = present & ~within  # (R, n, V)
    at = ~beyond.any(dim=2)  # (R, n)
    flip = (1,)
    tail_beyond = beyond.sum(dim=2).flip(flip).cumsum(1).flip(flip)  # (R, n): over bits >= i
    tail_cells = present.sum(dim=2).flip(flip).cumsum(1).flip(flip)
    ok = at & (tail_beyond <= chance * tail_cells + 1e-9)
    n = within.shape[1]
    index = torch.where(ok, torch.arange(n).expand_as(ok), torch.full_like(ok, n, dtype=torch.long))
    return index.min(dim=1).values


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The fewest significand bits k like float64, with its bootstrap interval and decision.

    ``k``, ``low``, ``high``: None stands for 'none' (no swept bits behave like float64). With
    ``resamples`` 0 (a result cached before the bootstrap) there is no interval.
    """

    k: int | None
    low: int | None
    high: int | None
    bits: tuple[int, ...]
    units: int
    resamples: int
    level: float = LEVEL
    decided: bool = False
    reason: str = ""

    @property
    def has_interval(self) -> bool:
        return self.resamples > 0

    def k_text(self) -> str:
        """'15', '4 or fewer' (the fewest swept bits), 'none'."""
        if self.k is None:
            return "none"
        if self.bits and self.k == self.bits[0]:
            return f"{self.k} or fewer"
        return str(self.k)

    def interval_text(self) -> str:
        if not self.has_interval:
            return "no interval"
        lo = "none" if self.low is None else str(self.low)
        hi = "none" if self.high is None else str(self.high)
        return lo if lo == hi else f"{lo}-{hi}"

    def text(self) -> str:
        """The table cell: '15 [90%: 13-17]', 'undecided: 6 [90%: 4-none]'."""
        if not self.has_interval:
            return f"{self.k_text()} (no interval: cached before the bootstrap)"
        cell = f"{self.k_text()} [{self.level:.0%}: {self.interval_text()}]"
        return cell if self.decided else f"undecided: {cell}"


def _quantile_index(values: Tensor, q: float, *, upper: bool) -> int:
    sorted_values = values.sort().values
    pos = q * (len(sorted_values) - 1)
    return int(sorted_values[math.ceil(pos) if upper else math.floor(pos)])


def verdict(point: int, resampled: Tensor | None, bits: Sequence[int], *, units: int,
            level: float = LEVEL) -> Verdict:
    """The :class:`Verdict` of a point index and its resampled indices (from
    :func:`first_qualifying`: 0 .. len(bits), len(bits) meaning none), decided by :data:`RULE`."""
    bits = tuple(bits)
    n = len(bits)

    def value(i: int) -> int | None:
        return bits[i] if i < n else None

    if resampled is None or resampled.numel() == 0:
        return Verdict(k=value(point), low=None, high=None, bits=bits, units=units, resamples=0,
                       level=level, decided=False,
                       reason="this result was cached before the bootstrap; recompute it "
                              "(--fresh --overwrite) for an interval")
    tail = (1.0 - level) / 2
    lo_i = _quantile_index(resampled, tail, upper=False)
    hi_i = _quantile_index(resampled, 1.0 - tail, upper=True)
    low, high, k = value(lo_i), value(hi_i), value(point)
    reasons = []
    if units < MIN_UNITS:
        reasons.append(f"only {units} independent resampling unit{'s' * (units != 1)} "
                       f"(fewer than {MIN_UNITS}): too short or too small to estimate its noise")
    if high is None and low is not None:
        share = float((resampled == n).double().mean())
        reasons.append(f"the {level:.0%} interval of k reaches 'none': in {share:.0%} of the "
                       "resamples no swept sbits behaves like float64")
    elif low is not None and high is not None and high - low > MAX_WIDTH:
        reasons.append(f"the {level:.0%} interval of k, {low}-{high}, spans {high - low} bits "
                       f"(more than {MAX_WIDTH})")
    if not lo_i <= point <= hi_i:
        reasons.append(f"k = {value(point) or 'none'} of the whole run lies outside the interval "
                       "of its resamples")
    return Verdict(k=k, low=low, high=high, bits=bits, units=units, resamples=len(resampled),
                   level=level, decided=not reasons, reason="; ".join(reasons))

"""A slow, exact reference rounding in rational arithmetic, one Python float at a time.

Independent of the integer-view kernels in :mod:`~sciflow.precision.rounding` (it shares only the
:class:`~sciflow.precision.formats.Format` definition), so the tests can check them on any format,
not only those torch or numpy can cast to. The representable neighbours of ``|x|`` are
``k q`` and ``(k + 1) q`` with ``q = 2^(max(E, emin) - sbits)`` the gap at x's binade
``E = floor(log2 |x|)`` (``q = 2^emin`` below the smallest normal when there are no subnormals);
round-to-nearest picks the nearer (the even ``k`` on a tie), stochastic rounding goes up with
probability ``|x|/q - k``. Overflow is decided after rounding with an unbounded exponent, as in
IEEE 754.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from .formats import Format

__all__ = ["Neighbours", "reference_neighbours", "reference_round"]


@dataclass(frozen=True)
class Neighbours:
    """The two values of a format around ``x`` and where ``x`` sits between them.

    ``toward_zero`` and ``away_from_zero`` bracket x (equal when x is representable);
    ``fraction`` in [0, 1) is ``(|x| - |toward_zero|) / gap``, the probability that stochastic
    rounding returns ``away_from_zero``; ``even`` says whether ``toward_zero`` is an even multiple
    of the gap (where ties go). Both values are before overflow handling: ``away_from_zero`` may
    exceed the format's largest finite value.
    """

    toward_zero: float
    away_from_zero: float
    fraction: Fraction
    even: bool


def reference_neighbours(x: float, fmt: Format, dtype: torch.dtype = torch.float64) -> Neighbours:
    """The format values bracketing finite ``x`` (toward and away from zero), exactly."""
    if not math.isfinite(x):
        raise ValueError(f"x={x} is not finite; neighbours exist only for finite values")
    if x == 0:
        return Neighbours(x, x, Fraction(0), True)
    a = Fraction(abs(x))
    p, emin = fmt.sbits, fmt.emin(dtype)
    binade = math.frexp(abs(x))[1] - 1
    if not fmt.subnormals and binade < emin:
        q = Fraction(2) ** emin
    else:
        q = Fraction(2) ** (max(binade, emin) - p)
    k = math.floor(a / q)
    down = k * q
    frac = (a - down) / q
    up = down if frac == 0 else down + q
    sign = -1.0 if x < 0 else 1.0
    return Neighbours(sign * _to_float(down), sign * _to_float(up), frac, k % 2 == 0)


def _to_float(value: Fraction) -> float:
    """Exact for format values; past float64's range (an overflowing neighbour) gives inf."""
    return float(value) if value < Fraction(2) ** 1024 else math.inf


def _overflow(value: float, fmt: Format, dtype: torch.dtype) -> float:
    big = fmt.max_finite(dtype)
    if abs(value) <= big:
        return value
    if fmt.saturate:
        return math.copysign(big, value)
    return math.copysign(math.inf, value) if fmt.infinities else math.nan


def reference_round(
    x: float,
    fmt: Format,
    dtype: torch.dtype = torch.float64,
    *,
    up: bool | None = None,
) -> float:
    """Round-to-nearest-even of ``x`` to ``fmt`` (or, with ``up`` given, the stochastic outcome).

    ``up=True`` / ``False`` return what stochastic rounding gives when it rounds away from / toward
    zero. ``dtype`` is the container (it fixes the range of ``ebits=None`` formats).
    """
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        if fmt.saturate:
            return math.copysign(fmt.max_finite(dtype), x)
        return x if fmt.infinities else math.nan
    nb = reference_neighbours(x, fmt, dtype)
    if up is None:
        half = Fraction(1, 2)
        up = nb.fraction > half if nb.fraction != half else not nb.even
    value = nb.away_from_zero if up else nb.toward_zero
    if value == 0:
        return math.copysign(0.0, x)
    return _overflow(value, fmt, dtype)

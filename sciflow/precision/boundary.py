"""Test inputs that exercise every rounding decision of a format.

A rounding to a format is decided by where a value sits between two neighbouring representable
values, so the values that can expose a bug are: the representable values themselves, the midpoint
between each value and the next (ties: round-to-nearest-even must go to the even one), one container
ulp on either side of both, and the edges: subnormals, the smallest positive value and half of it,
the overflow threshold (the midpoint between the largest finite value and the next power of two),
signed zeros, infinities and NaN. :func:`boundary_values` builds that set, both signs; it covers
every representable value of formats with up to ``max_values`` non-negative values (all of float16
and bfloat16: 31 744 and 32 640), and evenly chosen binades and significands of larger ones.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .formats import Format, container_bits

__all__ = ["boundary_values", "representable_values"]


def representable_values(
    fmt: Format, dtype: torch.dtype = torch.float32, *, max_values: int = 1 << 16
) -> tuple[Tensor, Tensor]:
    """Non-negative finite values of ``fmt`` and the gap to the next value above each, in float64.

    All of them when there are at most ``max_values``; otherwise every binade's first and last 32
    significands and evenly spaced ones, in the lowest, highest and evenly chosen binades.

    Shapes: -> (values (V,), gaps (V,)); ``values + gaps`` is the next value (for the largest
    finite value: the next power of two, or the NaN pattern's value in formats without inf).
    """
    fmt.check_container(dtype)
    p = fmt.sbits
    emin, emax = fmt.emin(dtype), fmt.emax(dtype)
    n_binades = emax - emin + 1
    per_binade = 1 << p
    if n_binades * per_binade <= max_values:
        binades = torch.arange(emin, emax + 1, dtype=torch.int64)
        fractions = torch.arange(per_binade, dtype=torch.int64)
    else:
        n_frac = min(per_binade, 256)
        fractions = torch.cat(
            [
                torch.arange(min(32, per_binade), dtype=torch.int64),
                torch.arange(max(per_binade - 32, 0), per_binade, dtype=torch.int64),
                torch.linspace(0, per_binade - 1, n_frac, dtype=torch.float64).to(torch.int64),
            ]
        ).unique()
        n_b = max(8, max_values // fractions.numel())
        binades = torch.cat(
            [
                torch.arange(emin, min(emin + 4, emax + 1), dtype=torch.int64),
                torch.arange(max(emax - 3, emin), emax + 1, dtype=torch.int64),
                torch.arange(-2, 3, dtype=torch.int64).clamp(emin, emax),
                torch.linspace(emin, emax, n_b, dtype=torch.float64).round().to(torch.int64),
            ]
        ).unique()
    two = torch.tensor(2.0, dtype=torch.float64)
    e = binades[:, None].expand(-1, fractions.numel()).reshape(-1)
    f = fractions[None, :].expand(binades.numel(), -1).reshape(-1)
    values = ((1 << p) + f).to(torch.float64) * torch.pow(two, (e - p).to(torch.float64))
    gaps = torch.pow(two, (e - p).to(torch.float64))
    if not fmt.infinities:  # the top binade's all-ones significand is NaN
        keep = ~((e == emax) & (f == per_binade - 1))
        values, gaps = values[keep], gaps[keep]
    quantum = 2.0 ** (emin - p) if fmt.subnormals else 2.0**emin
    if fmt.subnormals:
        sub_f = fractions[fractions < per_binade]
        subs = sub_f.to(torch.float64) * quantum
    else:
        subs = torch.zeros(1, dtype=torch.float64)
    values = torch.cat([subs, values])
    gaps = torch.cat([torch.full_like(subs, quantum), gaps])
    order = values.argsort()
    return values[order], gaps[order]


def boundary_values(
    fmt: Format, dtype: torch.dtype = torch.float32, *, max_values: int = 1 << 16
) -> Tensor:
    """Container values around every rounding decision of ``fmt`` (both signs, and specials).

    For each representable non-negative value ``v`` with gap ``q`` to the next: ``v``, the
    midpoint ``v + q/2``, one container ulp either side of each, and (float64 containers) points a
    relative 2^-30 either side of the midpoint, which a rounding through float32 first would snap
    onto the midpoint (double rounding). Plus +/-0, +/-inf, NaN and the container's extreme values.

    Shapes: -> (K,) of ``dtype``, unsorted, duplicates removed.
    """
    values, gaps = representable_values(fmt, dtype, max_values=max_values)
    mids = values + gaps / 2  # exact in float64: one bit more than fmt's significand
    pieces = [values, mids]
    if dtype == torch.float64:
        pieces += [mids * (1 + 2.0**-30), mids * (1 - 2.0**-30)]
    base = torch.cat(pieces)
    finfo = torch.finfo(dtype)
    base = base[base <= finfo.max].to(dtype)
    inf = torch.tensor(float("inf"), dtype=dtype)
    around = torch.cat([base, torch.nextafter(base, inf), torch.nextafter(base, -inf)])
    frac_bits, exp_bits = container_bits(dtype)
    smallest = 2.0 ** (2 - (1 << (exp_bits - 1)) - frac_bits)
    specials = torch.tensor(
        [0.0, float("inf"), float("nan"), finfo.max, finfo.tiny, smallest, 2 * smallest],
        dtype=torch.float64,
    ).to(dtype)
    specials = torch.cat([specials, torch.nextafter(specials[4:5], specials[0:1])])
    every = torch.cat([around, specials])
    every = every[torch.isnan(every) | (every >= 0)]
    both = torch.cat([every, -every])
    int_dtype = torch.int32 if dtype == torch.float32 else torch.int64
    return both.view(int_dtype).unique().view(dtype)

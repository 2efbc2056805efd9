"""Stagnation: many tiny increments under round-to-nearest and stochastic rounding.

``x <- x + increment``, repeated: with the increment below half a unit in the last place of x,
round-to-nearest returns x every time (the sum stands still), while stochastic rounding moves up
with probability increment / gap, so its mean follows the exact sum (the soil column of
:mod:`.heat` shows the same in a model).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sciflow.errors import InputError
from sciflow.precision import FLOAT16, ROUNDINGS, Format, emulate

from .results import Stagnation

__all__ = ["stagnation"]


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
        raise InputError(f"steps and members must be >= 1, got {steps} and {members}")
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
        members=members,
    )

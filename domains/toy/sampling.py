"""Sampling a toy flow: source draws pushed through the learned ODE by any registered solver."""

from __future__ import annotations

import torch
from torch import Tensor

from sciflow.datasets.toy2d import TOY2D
from sciflow.errors import InputError
from sciflow.outputs import ensure_finite
from sciflow.resources import check_memory
from sciflow.solvers import SOLVERS, odeint

from .model import Model

__all__ = ["sample"]


@torch.no_grad()
def sample(model: Model, n: int, *, solver: str = "euler", steps: int = 8, seed: int = 0) -> Tensor:
    """Draw ``n`` samples (n, 2): x0 from the source density, x1 = ODE(x0) with ``solver``.

    ``steps`` is the number of solver steps (ignored by the adaptive dopri5). Raises InputError
    for n < 1, steps < 1 or an unknown solver, ResourceError when n would not fit in memory,
    NonFiniteError if the flow produced NaN/inf.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"n={n!r}: expected the number of samples, an integer >= 1")
    if solver not in SOLVERS and solver != "dopri5":
        raise InputError(f"solver={solver!r}: choose from {sorted(set(SOLVERS) | {'dopri5'})}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps={steps!r}: expected an integer >= 1")
    check_memory(n * 2 * 4 * 12, f"{n} samples", name="n")  # state + solver stages, float32
    g = torch.Generator().manual_seed(seed)
    x0 = TOY2D[model.config.source](n, generator=g)
    device = next(model.net.parameters()).device
    x = odeint(model.net, x0.to(device), method=solver, steps=steps).x.cpu()
    ensure_finite(x, "toy samples", hint="try another solver or more steps")
    return x

"""Where a TS flow starts: the midpoint-centred Gaussian source and its alignment to the TS.

The source (t = 0) of a reaction with reactant R and product P (one atom order, P aligned onto R)
is, per atom i,

    x0_i = m_i + s * (eps_i - mean_{j in molecule} eps_j),   eps ~ N(0, I),

with m = (R + P)/2 for ``source="midpoint"`` (a noisy React-OT start, Duan et al. 2025) or m = 0
for ``source="gaussian"`` (TS-GEN, Tuo et al. 2025) and s = ``source_scale`` (A). It is the core's
:class:`sciflow.sources.GaussianSource` (``center_graphs=True``, ``mean=``:func:`midpoint`), so
the matcher, the solvers' SDE step and the particle searches all draw it through one interface.

In training the noise of each reaction is rotated (proper rotation, about its centroid) onto the
TS's offset from the source centre before pairing, :class:`NoiseAlignment` (TS-GEN's alignment of
the TS to the noise): rotating centred isotropic noise leaves its law unchanged, so this is a valid
coupling that removes rotational transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciflow.couplings import CouplingResult, kabsch_align
from sciflow.sources import GaussianSource

from .config import Config
from .data import TSCondition

__all__ = ["midpoint", "make_source", "NoiseAlignment"]


def midpoint(cond: TSCondition) -> Tensor:
    """(R + P)/2 per atom, the centre of the midpoint source. Shapes: -> (N, 3)."""
    return 0.5 * (cond.reactant + cond.product)


def make_source(config: Config) -> GaussianSource:
    """The source of ``config``: centred Gaussian noise of scale ``source_scale`` around the R/P
    midpoint (``source="midpoint"``) or the origin (``"gaussian"``)."""
    return GaussianSource(scale=float(config.source_scale), center_graphs=True,
                          mean=midpoint if config.source == "midpoint" else None)


@dataclass(frozen=True)
class NoiseAlignment:
    """A :class:`~sciflow.couplings.Coupling`: x0 = m + Rot_g (x0 - m), Rot_g the proper rotation
    that best superposes reaction g's source noise x0 - m on the TS's offset x1 - m
    (:func:`sciflow.couplings.kabsch_align`); ``mean`` is m as a function of the condition
    (None: m = 0). Shapes: x0, x1 (N, 3), batch (N,)."""

    mean: Any = None

    def __call__(self, x0: Tensor, x1: Tensor, *, cond: Any = None, batch: Tensor | None = None,
                 generator: torch.Generator | None = None) -> CouplingResult:
        m = self.mean(cond) if self.mean is not None else torch.zeros_like(x0)
        aligned = m + kabsch_align(x0 - m, x1 - m, batch)
        index = torch.arange(x0.shape[0], device=x0.device)
        return CouplingResult(x0=aligned, x1=x1, cond=cond, index0=index)

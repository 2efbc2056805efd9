"""What a population is: its source cells and, per condition, its target cells (tensors).

A *population* is a group of cells measured together (a patient sample, a replicate well, a
letter at one rotation). Each population has *source* cells (e.g. untreated control) and, for each
*condition* (a treatment), *target* cells: the population after the process the flow must learn.
One (population, condition) is a :class:`PopulationPair`; :class:`CellPopulations` holds them
with the feature names and the ``obs`` columns they were read from (:mod:`.data`).

A population must be large enough to be one: :func:`check_population_sizes` refuses, by name,
every population below the model's stated minimum (:attr:`~.config.Config.min_population`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from sciflow.errors import InputError

if TYPE_CHECKING:
    from .origin import CellOrigin

__all__ = ["CellDataError", "PopulationPair", "CellPopulations", "as_pairs", "subsample",
           "check_population_sizes"]


class CellDataError(InputError):
    """Input cells that cannot be turned into populations (the message says which and why)."""


@dataclass(frozen=True)
class PopulationPair:
    """One population under one condition: its source cells and (when known) its target cells.

    source: (n, D) float32; target: (m, D) float32 or None (prediction only). ``paired``: row i
    of source and row i of target are the same cell before and after (then n == m).
    ``condition`` is None when the data have no condition column. source_names: the n cell
    names (``obs_names``) of the source rows, in order, when read from AnnData (predictions
    link back to them); None for pairs built by hand.
    """

    population: str
    condition: str | None
    source: Tensor
    target: Tensor | None
    paired: bool = False
    source_names: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        """``population`` or ``population|condition``: a unique name for tables."""
        return self.population if self.condition is None else f"{self.population}|{self.condition}"


@dataclass(frozen=True)
class CellPopulations:
    """Populations read from AnnData, with what is needed to write results back.

    pairs: every (population, condition) with its cells. features: names of the D features.
    rep: where the features were read (``"X"`` or an ``obsm`` key). keys: how the cells were
    read, so that outputs use the same obs columns and a model reads new data the same way:
    the columns ``population``, ``role``, ``condition``, ``pair`` (names or None), ``control``
    (the untreated level of the condition column, or None) and ``pool`` (bool: treatments
    pooled into one target). origin: what writing predictions back needs of the input AnnData
    (:class:`~.origin.CellOrigin`: the source cells' obs, var, the map back to genes); None
    for populations built by hand.
    """

    pairs: tuple[PopulationPair, ...]
    features: tuple[str, ...]
    rep: str
    keys: dict[str, Any]
    origin: CellOrigin | None = None

    @property
    def dim(self) -> int:
        return len(self.features)

    @property
    def populations(self) -> tuple[str, ...]:
        """Population names in order of first appearance."""
        return tuple(dict.fromkeys(p.population for p in self.pairs))

    @property
    def conditions(self) -> tuple[str, ...]:
        """Sorted condition names (empty when the data have no condition column)."""
        return tuple(sorted({p.condition for p in self.pairs if p.condition is not None}))

    def select(self, populations: Sequence[str]) -> CellPopulations:
        """The pairs of the named populations only (KeyError-free: unknown names raise clearly)."""
        wanted = set(populations)
        unknown = wanted - set(self.populations)
        if unknown:
            raise CellDataError(f"unknown population(s) {sorted(unknown)[:10]}; known: "
                                f"{list(self.populations)[:10]}...")
        return CellPopulations(pairs=tuple(p for p in self.pairs if p.population in wanted),
                               features=self.features, rep=self.rep, keys=dict(self.keys),
                               origin=self.origin)


def check_population_sizes(pairs: Sequence[PopulationPair], minimum: int, *, why: str,
                           targets: bool = True) -> None:
    """Raise :class:`CellDataError` naming the first population with fewer than ``minimum``
    source (or, with ``targets``, target) cells; ``why`` says what needs that many."""
    for p in pairs:
        sets = [("source", p.source)] + ([("target", p.target)] if targets else [])
        for role, cells in sets:
            n = 0 if cells is None else int(cells.shape[0])
            if n < minimum:
                raise CellDataError(
                    f"population {p.key!r} has {n} {role} cell(s), fewer than the {minimum} "
                    f"{why}; drop or merge small populations"
                    + (", or lower knn" if "knn" in why else ""))


def as_pairs(cells: CellPopulations | Sequence[PopulationPair]) -> tuple[PopulationPair, ...]:
    """The pairs of ``cells`` (CellPopulations or a sequence of PopulationPair), checked."""
    pairs = tuple(cells.pairs) if isinstance(cells, CellPopulations) else tuple(cells)
    if not all(isinstance(p, PopulationPair) for p in pairs):
        raise CellDataError("expected CellPopulations or a sequence of PopulationPair")
    return pairs


def subsample(x: Tensor, n: int | None, seed: int) -> Tensor:
    """At most ``n`` rows of ``x``, drawn without replacement with ``seed`` (all for None)."""
    if n is None or x.shape[0] <= n:
        return x
    g = torch.Generator().manual_seed(seed)
    return x[torch.randperm(x.shape[0], generator=g)[:n]]

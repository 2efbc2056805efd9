"""Reactant / product geometries <-> PyG batches with the conditions of the TS generator.

A reaction enters the model as one graph whose atoms carry

==========  ===========  ========================================================================
field       shape        meaning
==========  ===========  ========================================================================
``z``       (N,)         atomic numbers (int64)
``x``       (N, E)       one-hot element over the model's ``elements``
``pos_r``   (N, 3)       reactant, centred at its centroid (the reaction's frame)
``pos_p``   (N, 3)       product, Kabsch-aligned onto ``pos_r`` (proper rotation, centred too)
``pos_ts``  (N, 3)       the reference TS, Kabsch-aligned onto ``pos_r`` (training data only)
==========  ===========  ========================================================================

the layout of :mod:`sciflow.datasets.reactions.graph_dataset` (the same preprocessing as TS-GEN,
Tuo et al., arXiv 2507.10530, and React-OT, Duan et al. 2025, without mirror images). The velocity
network sees R and P as equivariant node conditioning: the vectors R_i - x_i and P_i - x_i from
each atom's current position (see :mod:`.model`).

User input is checked here, before any tensor exists: R and P must have one atom count and one
element order, finite coordinates, no two atoms closer than ``min_distance`` and only elements the
model was trained on; an atom-mapped reaction SMILES must map every atom (hydrogens included)
consistently on both sides (:mod:`.smiles`). Every failure is a :class:`TSInputError` (an
:class:`sciflow.errors.InputError`) naming the problem. Files (structures, reaction stores, splits)
are read by :mod:`.files`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from torch import Tensor

from sciflow.errors import InputError

from .config import DEFAULT_ELEMENTS

__all__ = [
    "DEFAULT_ELEMENTS",
    "TSInputError",
    "TSCondition",
    "Endpoints",
    "check_endpoints",
    "prepare_endpoints",
    "endpoints_to_data",
    "reaction_to_graph",
    "collate",
    "stack_endpoints",
    "condition_of",
    "MIN_ATOMS",
]

MIN_ATOMS = 2
"""The smallest reaction the generator takes (one atom has no geometry to change)."""


class TSInputError(InputError):
    """Reactant / product input that the TS generator cannot take; the message says why."""


@dataclass(frozen=True)
class TSCondition:
    """What the TS velocity field is conditioned on, for a ragged batch of reactions.

    Attributes
    ----------
    features : (N, E) one-hot element of each atom over the model's elements.
    reactant : (N, 3) reactant positions, centred per reaction.
    product : (N, 3) product positions, Kabsch-aligned onto the reactant.
    """

    features: Tensor
    reactant: Tensor
    product: Tensor

    def to(self, device: torch.device | str) -> TSCondition:
        return TSCondition(self.features.to(device), self.reactant.to(device),
                           self.product.to(device))


@dataclass(frozen=True)
class Endpoints:
    """Validated reactant and product of one reaction, in the frame the model works in.

    ``reactant`` is centred; ``product`` is Kabsch-aligned onto it; ``origin`` (3,) is the
    reactant's centroid in the user's coordinates, added back to generated TSs so they sit on the
    user's reactant.
    """

    numbers: np.ndarray
    reactant: np.ndarray
    product: np.ndarray
    origin: np.ndarray


def _symbols(numbers: Iterable[int]) -> str:
    return ", ".join(chemical_symbols[int(z)] for z in numbers)


def _check_geometry(name: str, pos: np.ndarray, numbers: np.ndarray, min_distance: float) -> None:
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        raise TSInputError(f"{name} has non-finite (NaN or inf) coordinates on atom(s) "
                           f"{np.flatnonzero(bad).tolist()}")
    if len(pos) < 2:
        return
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    d[np.diag_indices(len(pos))] = np.inf
    i, j = np.unravel_index(np.argmin(d), d.shape)
    if d[i, j] < min_distance:
        i, j = sorted((int(i), int(j)))
        raise TSInputError(
            f"{name} has overlapping atoms: {chemical_symbols[numbers[i]]}{i} and "
            f"{chemical_symbols[numbers[j]]}{j} are {d[i, j]:.3f} A apart (minimum allowed "
            f"{min_distance} A); check the units (Angstrom) and duplicated atoms")


def check_endpoints(reactant: Atoms, product: Atoms, *, elements: Sequence[int] = DEFAULT_ELEMENTS,
                    min_distance: float = 0.5) -> None:
    """Raise :class:`TSInputError` unless R and P can go into the model (see module docstring)."""
    for name, a in (("reactant", reactant), ("product", product)):
        if not isinstance(a, Atoms):
            raise TSInputError(f"{name} must be an ase.Atoms, got {type(a).__name__}")
        if len(a) < MIN_ATOMS:
            raise TSInputError(f"{name} has {len(a)} atom(s); a reaction needs at least "
                               f"{MIN_ATOMS} atoms (check that the file holds the whole molecule)")
    if len(reactant) != len(product):
        raise TSInputError(f"reactant has {len(reactant)} atoms but product has {len(product)}; "
                           "R and P must hold the same atoms in one atom order")
    zr, zp = reactant.numbers, product.numbers
    if not np.array_equal(zr, zp):
        k = int(np.flatnonzero(zr != zp)[0])
        raise TSInputError(
            f"reactant and product element orders differ first at atom {k} "
            f"({chemical_symbols[zr[k]]} vs {chemical_symbols[zp[k]]}); R and P must list the same "
            "atoms in one atom order (an atom-mapped pair)")
    unknown = sorted(set(int(z) for z in zr) - set(int(e) for e in elements))
    if unknown:
        raise TSInputError(
            f"element(s) {_symbols(unknown)} are outside the model's training set "
            f"({_symbols(elements)}); this checkpoint cannot generate their transition states")
    for name, a in (("reactant", reactant), ("product", product)):
        _check_geometry(name, np.asarray(a.get_positions(), dtype=float), zr, min_distance)


def _kabsch_onto(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x rotated (proper rotation only) and translated onto y, in numpy (small arrays: no torch
    overhead); the reactions package's alignment, so stored and user reactions share one frame."""
    from sciflow.datasets.reactions.align import kabsch_align

    return kabsch_align(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def prepare_endpoints(reactant: Atoms, product: Atoms, *,
                      elements: Sequence[int] = DEFAULT_ELEMENTS,
                      min_distance: float = 0.5) -> Endpoints:
    """Check R and P, centre R and Kabsch-align P onto it (the model's frame)."""
    check_endpoints(reactant, product, elements=elements, min_distance=min_distance)
    r = np.asarray(reactant.get_positions(), dtype=float)
    origin = r.mean(axis=0)
    r = r - origin
    p = _kabsch_onto(np.asarray(product.get_positions(), dtype=float), r)
    return Endpoints(numbers=np.asarray(reactant.numbers, dtype=np.int64), reactant=r, product=p,
                     origin=origin)


def _one_hot(numbers: np.ndarray, elements: Sequence[int], dtype: torch.dtype) -> Tensor:
    index = {int(e): k for k, e in enumerate(elements)}
    out = torch.zeros(len(numbers), len(elements), dtype=dtype)
    out[torch.arange(len(numbers)), torch.as_tensor([index[int(z)] for z in numbers])] = 1.0
    return out


def endpoints_to_data(ep: Endpoints, *, elements: Sequence[int] = DEFAULT_ELEMENTS,
                      dtype: torch.dtype = torch.float32, ts: np.ndarray | None = None):
    """One reaction's endpoints (and optionally its reference TS, in the same frame) -> PyG Data."""
    from torch_geometric.data import Data

    fields = {
        "z": torch.as_tensor(ep.numbers, dtype=torch.long),
        "x": _one_hot(ep.numbers, elements, dtype),
        "pos_r": torch.as_tensor(ep.reactant, dtype=dtype),
        "pos_p": torch.as_tensor(ep.product, dtype=dtype),
    }
    if ts is not None:
        fields["pos_ts"] = torch.as_tensor(ts, dtype=dtype)
    return Data(**fields, num_nodes=len(ep.numbers))


def reaction_to_graph(reaction: Any, *, elements: Sequence[int] = DEFAULT_ELEMENTS,
                      dtype: torch.dtype = torch.float32):
    """A :class:`~sciflow.datasets.reactions.Reaction` -> PyG Data with ``pos_ts`` (training).

    Uses the reactions package's layout (R centred, P and TS Kabsch-aligned onto R) and checks
    the elements, so a reaction outside ``elements`` is a clear :class:`TSInputError`.
    """
    from sciflow.datasets.reactions.graph_dataset import reaction_to_data

    unknown = sorted(set(int(z) for z in reaction.numbers) - set(int(e) for e in elements))
    if unknown:
        raise TSInputError(f"reaction {reaction.id!r} has element(s) {_symbols(unknown)} outside "
                           f"the model's elements ({_symbols(elements)})")
    if len(reaction.numbers) < MIN_ATOMS:
        raise TSInputError(f"reaction {reaction.id!r} has {len(reaction.numbers)} atom(s); "
                           f"training needs reactions of at least {MIN_ATOMS} atoms")
    for name in ("reactant", "transition_state", "product"):
        pos = np.asarray(getattr(reaction, name).get_positions(), dtype=float)
        if not np.isfinite(pos).all():
            raise TSInputError(f"reaction {reaction.id!r}: the {name.replace('_', ' ')} has "
                               "non-finite (NaN or inf) coordinates; drop it from the data")
    data = reaction_to_data(reaction, elements=elements, dtype=dtype)
    data.origin = torch.as_tensor(reaction.reactant.get_positions().mean(0), dtype=dtype)[None]
    return data


def stack_endpoints(endpoints: Sequence[Endpoints], *, elements: Sequence[int] = DEFAULT_ELEMENTS,
                    repeats: int = 1, dtype: torch.dtype = torch.float32
                    ) -> tuple[TSCondition, Tensor]:
    """The condition and batch vector of many reactions, each repeated ``repeats`` times in a
    row (for several samples), without building PyG objects (the fast path of generation).

    Shapes: -> features (N, E), reactant / product (N, 3), batch (N,), N = repeats sum_g n_g.
    """
    def cat(parts: list[np.ndarray]) -> Tensor:
        return torch.as_tensor(np.concatenate(parts), dtype=dtype)

    numbers = np.concatenate([ep.numbers for ep in endpoints for _ in range(repeats)])
    sizes = torch.as_tensor([len(ep.numbers) for ep in endpoints for _ in range(repeats)])
    cond = TSCondition(
        features=_one_hot(numbers, elements, dtype),
        reactant=cat([ep.reactant for ep in endpoints for _ in range(repeats)]),
        product=cat([ep.product for ep in endpoints for _ in range(repeats)]),
    )
    return cond, torch.repeat_interleave(torch.arange(len(sizes)), sizes)


def collate(graphs: Sequence) -> object:
    """Stack PyG Data objects into one ragged ``Batch`` (``batch`` vector, per-graph fields)."""
    from torch_geometric.data import Batch

    return Batch.from_data_list(list(graphs))


def condition_of(batch) -> TSCondition:
    """The :class:`TSCondition` of a batch made by :func:`collate`."""
    return TSCondition(features=batch.x, reactant=batch.pos_r, product=batch.pos_p)


_MOVED = {"endpoints_from_smiles": ".smiles", "read_endpoint": ".files",
          "snapshot_reactions": ".files", "select_reactions": ".files"}


def __getattr__(name: str) -> Any:
    """Names that moved to :mod:`.files` and :mod:`.smiles` stay importable from here."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

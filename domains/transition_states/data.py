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
consistently on both sides. Every failure is a :class:`TSInputError` naming the problem.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from torch import Tensor

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
    "endpoints_from_smiles",
    "read_endpoint",
    "snapshot_reactions",
    "select_reactions",
]

DEFAULT_ELEMENTS: tuple[int, ...] = (1, 6, 7, 8)
"""H, C, N, O: the elements of the shipped reaction data and of Transition1x."""


class TSInputError(ValueError):
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
        if len(a) == 0:
            raise TSInputError(f"{name} has no atoms")
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


def reaction_to_graph(reaction, *, elements: Sequence[int] = DEFAULT_ELEMENTS,
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


# ----------------------------------------------------------------------------- files and SMILES


def read_endpoint(path: str | Path, name: str) -> Atoms:
    """Read one structure with ASE (any format it reads; the last frame of a trajectory)."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} file {str(path)!r} does not exist")
    try:
        atoms = ase.io.read(path)
    except Exception as err:  # ASE raises many types for unreadable files
        raise TSInputError(f"could not read {name} file {str(path)!r} with ASE: {err}") from err
    if isinstance(atoms, list):
        atoms = atoms[-1]
    return atoms


def _mapped_side(smiles: str, side: str):
    from rdkit import Chem

    params = Chem.SmilesParserParams()
    params.removeHs = False
    mol = Chem.MolFromSmiles(smiles, params)
    if mol is None:
        raise TSInputError(f"the {side} SMILES {smiles!r} could not be parsed by RDKit")
    mol = Chem.AddHs(mol)
    maps = [a.GetAtomMapNum() for a in mol.GetAtoms()]
    unmapped = [f"{a.GetSymbol()}{a.GetIdx()}" for a, m in zip(mol.GetAtoms(), maps) if m == 0]
    if unmapped:
        raise TSInputError(
            f"the {side} SMILES {smiles!r} has {len(unmapped)} unmapped atom(s) (e.g. "
            f"{', '.join(unmapped[:4])}, implicit hydrogens included); map every atom, hydrogens "
            "as [H:n], e.g. [C:1]([H:3])([H:4])=[O:2]>>...")
    dup = sorted({m for m in maps if maps.count(m) > 1})
    if dup:
        raise TSInputError(f"the {side} SMILES {smiles!r} uses atom-map number(s) {dup} twice")
    return mol


def endpoints_from_smiles(reaction_smiles: str, *, seed: int = 0,
                          product_conformers: int = 10) -> tuple[Atoms, Atoms]:
    """Embed both ends of an atom-mapped reaction SMILES ``R>>P`` in 3D, in one atom order.

    Atoms are ordered by map number. The reactant is embedded once (ETKDGv3, then MMFF where it
    has parameters); the product ``product_conformers`` times, and the conformer with the lowest
    Kabsch RMSD to the reactant is kept, so the two ends start as close as their bonding allows
    (the practice of picking R/P conformer pairs by RMSD for TS searches).
    """
    from rdkit.Chem import AllChem

    if not isinstance(reaction_smiles, str) or reaction_smiles.count(">") != 2 or ">>" not in reaction_smiles:
        raise TSInputError(f"reaction SMILES must read 'reactants>>products', got {reaction_smiles!r}")
    left, right = reaction_smiles.split(">>")
    if not left.strip() or not right.strip():
        raise TSInputError(f"reaction SMILES {reaction_smiles!r} lacks a reactant or a product side")
    mols = {side: _mapped_side(s.strip(), side) for side, s in (("reactant", left), ("product", right))}
    maps = {side: {a.GetAtomMapNum(): a for a in m.GetAtoms()} for side, m in mols.items()}
    if set(maps["reactant"]) != set(maps["product"]):
        only_r = sorted(set(maps["reactant"]) - set(maps["product"]))
        only_p = sorted(set(maps["product"]) - set(maps["reactant"]))
        raise TSInputError(f"atom maps differ between the sides: only in the reactant {only_r}, "
                           f"only in the product {only_p}; every mapped atom must appear on both")
    order = sorted(maps["reactant"])
    for m in order:
        a, b = maps["reactant"][m].GetSymbol(), maps["product"][m].GetSymbol()
        if a != b:
            raise TSInputError(f"atom map {m} is {a} in the reactant but {b} in the product; a "
                               "mapped atom must keep its element")

    def embed(side: str, n: int) -> list[np.ndarray]:
        mol = mols[side]
        params = AllChem.ETKDGv3()
        params.randomSeed = seed
        ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
        if not ids:
            raise TSInputError(f"RDKit could not embed the {side} in 3D")
        try:
            AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=500)
        except Exception:  # MMFF lacks parameters for a few species; ETKDG geometries are kept
            pass
        index = [maps[side][m].GetIdx() for m in order]
        return [mol.GetConformer(c).GetPositions()[index] for c in ids]

    numbers = [maps["reactant"][m].GetAtomicNum() for m in order]
    r = embed("reactant", 1)[0]
    best = min(embed("product", max(1, product_conformers)),
               key=lambda p: float(np.sqrt(((_kabsch_onto(p, r) - r) ** 2).sum(1).mean())))
    return Atoms(numbers=numbers, positions=r), Atoms(numbers=numbers, positions=best)


# ----------------------------------------------------------------------------- reaction files


def snapshot_reactions(path: str | Path) -> list:
    """Read the reactions of a file or of a store directory that may still be growing.

    A store directory (``reactions.extxyz.gz`` + ``records.jsonl``, appended to by a running
    ``sciflow ts build-dataset``) is copied first, records before reactions (the builder writes a
    reaction before its record), and read from the copy, so the live store is never modified.
    """
    from sciflow.datasets.reactions import ReactionStore, read_reactions

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"reaction data {str(path)!r} does not exist")
    if path.is_file():
        return read_reactions(path)
    with tempfile.TemporaryDirectory(prefix="sciflow-ts-") as tmp:
        for name in (ReactionStore.RECORDS, ReactionStore.REACTIONS):
            if not (path / name).exists():
                raise FileNotFoundError(f"{str(path)!r} is not a reaction store: it lacks {name}")
            shutil.copyfile(path / name, Path(tmp) / name)
        return list(ReactionStore(tmp).reactions())


def select_reactions(reactions: Sequence, ids: Iterable[str]) -> list:
    """The reactions whose ids are in ``ids``, in the order of ``ids``; unknown ids raise."""
    by_id = {r.id: r for r in reactions}
    ids = list(ids)
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise KeyError(f"{len(missing)} reaction id(s) are not in the data, e.g. {missing[:3]}")
    return [by_id[i] for i in ids]

"""Atom-mapped reaction SMILES -> reactant and product geometries in one atom order (RDKit).

Every atom must carry a map number (hydrogens included, ``[H:n]``), each number once per side, the
same numbers on both sides, and a mapped atom keeps its element; each failure is a
:class:`~.data.TSInputError` naming the SMILES and the fix. RDKit is imported when a SMILES is read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from .data import TSInputError, _kabsch_onto

__all__ = ["endpoints_from_smiles", "smiles_charge"]


def _mapped_side(smiles: str, side: str) -> Any:
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


def smiles_charge(reaction_smiles: str) -> int:
    """The total formal charge of the reactant side of ``R>>P`` (RDKit); 0 for neutral."""
    from rdkit import Chem

    left = reaction_smiles.split(">>")[0].strip()
    params = Chem.SmilesParserParams()
    params.removeHs = False
    mol = Chem.MolFromSmiles(left, params)
    if mol is None:
        raise TSInputError(f"the reactant SMILES {left!r} could not be parsed by RDKit")
    return int(Chem.GetFormalCharge(mol))

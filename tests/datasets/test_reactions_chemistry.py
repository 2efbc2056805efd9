"""Valence rules for H C N O F P S Cl, element selection, and the curated seed lists (no calculator runs)."""

from __future__ import annotations

import functools

import pytest
from ase.build import molecule

from sciflow.datasets.reactions.candidates import (
    ELEMENTS,
    canonical_smiles,
    enumerate_candidates,
    g2_seeds,
    parse_elements,
    seed_from_smiles,
    smiles_seeds,
)
from sciflow.datasets.reactions.molgraph import VALENCE, VALENCES, bond_orders
from sciflow.datasets.reactions.seedlists import (
    DEFAULT_SMILES,
    HETERO_SMILES,
    LARGE_SMILES,
    SEED_SETS,
)


@functools.cache
def _embedded(name: str):
    return smiles_seeds(SEED_SETS[name])


def _rdkit_graph(smiles: str):
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    graph = frozenset(tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds())
    orders = {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))): int(b.GetBondTypeAsDouble())
              for b in mol.GetBonds()}
    return numbers, graph, orders


@pytest.mark.parametrize("smiles", ["CS(C)=O", "CS(C)(=O)=O", "O=S=O", "CP(C)(C)=O", "O=P(O)(O)O", "CP(C)(C)=S",
                                    "COP(OC)OC", "CC(N)=S", "CSC#N", "FC(F)=C(F)F", "CC(Cl)=O", "CSSC"])
def test_bond_orders_reach_a_neutral_valence_of_every_element(smiles):
    numbers, graph, kekule = _rdkit_graph(smiles)
    orders = bond_orders(numbers, graph)
    assert orders is not None
    for atom, z in enumerate(numbers):
        total = sum(b for e, b in orders.items() if atom in e)
        assert total in VALENCES[z]
    # the expanded valence appears exactly where the molecule has S=O / P=O (P=S) double bonds
    assert sorted(orders.values()) == sorted(kekule.values())


@pytest.mark.parametrize("name, numbers", [("SH4", [16, 1, 1, 1, 1]), ("PH5", [15, 1, 1, 1, 1, 1]),
                                           ("SF4", [16, 9, 9, 9, 9]), ("SH6", [16] + [1] * 6),
                                           ("ClF3", [17, 9, 9, 9])])
def test_expanded_valence_needs_a_double_bond_to_o_or_n(name, numbers):
    star = frozenset((0, k) for k in range(1, len(numbers)))
    assert bond_orders(numbers, star) is None, name


def test_normal_valences_are_the_first_choice():
    assert all(VALENCE[z] == v[0] for z, v in VALENCES.items())
    assert VALENCE == {1: 1, 6: 4, 7: 3, 8: 2, 9: 1, 15: 3, 16: 2, 17: 1}
    # H2S: sulfur stays divalent even though 4 and 6 are allowed
    numbers, graph, _ = _rdkit_graph("S")
    assert set(bond_orders(numbers, graph).values()) == {1}


def test_parse_elements_reads_symbols_and_names_bad_ones():
    assert parse_elements("HCNOFPSCl") == ELEMENTS
    assert parse_elements("H, C, Cl") == ("H", "C", "Cl")
    assert parse_elements(["S", "P"]) == ("S", "P")
    with pytest.raises(ValueError, match="unknown Si"):
        parse_elements("HCSi")
    with pytest.raises(ValueError, match="none"):
        parse_elements("")


def test_g2_seeds_follow_the_element_selection():
    chno, _ = g2_seeds()
    every, skipped = g2_seeds(elements="HCNOFPSCl")
    assert {s.name for s in chno} < {s.name for s in every}
    names = {s.name for s in every}
    assert {"g2/CH3SH", "g2/CH3Cl", "g2/PH3", "g2/C2H6SO"} <= names  # thiol, chloride, phosphine, DMSO
    assert all(set(s.atoms.get_chemical_symbols()) <= set(ELEMENTS) for s in every)
    assert any("outside" in why for why in skipped.values())  # e.g. the silicon and sodium entries


@pytest.mark.parametrize("name", ["hetero", "large"])
def test_curated_lists_embed_and_hold_what_they_promise(name):
    seeds, skipped = _embedded(name)
    assert skipped == {}
    if name == "hetero":
        assert all(set(s.atoms.get_chemical_symbols()) & {"S", "F", "Cl", "P"} for s in seeds)
        assert len(seeds) >= 150
    else:
        sizes = [len(s.atoms) for s in seeds]
        assert 10 <= min(sizes) and max(sizes) <= 25
        assert sum(n > 14 for n in sizes) >= 100


def test_no_molecule_is_in_two_curated_lists():
    names = [canonical_smiles(s) for name in ("default", "hetero", "large") for s in _embedded(name)[0]]
    assert len(names) == len(set(names)) == len(DEFAULT_SMILES) + len(HETERO_SMILES) + len(LARGE_SMILES)


@pytest.mark.parametrize("smiles, element", [("CS(C)=O", "S"), ("CCCl", "Cl"), ("CP(C)(C)=O", "P"), ("C=CF", "F")])
def test_hetero_seeds_give_closed_shell_bond_edits(smiles, element):
    seed = seed_from_smiles(smiles)
    cands = enumerate_candidates(seed)
    assert cands
    for c in cands:
        assert bond_orders(c.numbers, c.p_graph) is not None
    # some edit changes a bond to the heteroatom (e.g. HCl elimination, a sulfoxide's O moving)
    assert any(element in c.family for c in cands)


def test_hcl_and_sulfur_seeds_are_accepted_from_geometries():
    from sciflow.datasets.reactions.candidates import seed_from_atoms

    for name in ("HCl", "CH3SH", "SO2", "PF3"):
        seed = seed_from_atoms(name, molecule(name))
        assert bond_orders(seed.atoms.numbers, seed.graph) is not None

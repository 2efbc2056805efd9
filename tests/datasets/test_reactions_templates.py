"""Template candidates (pericyclic, eliminations, ring openings, shifts) and the build order."""

from __future__ import annotations

import numpy as np
import pytest

from sciflow.datasets.reactions.candidates import (
    build_group,
    enumerate_candidates,
    interleave,
    mapped_smiles,
    seed_from_smiles,
)
from sciflow.datasets.reactions.molgraph import bond_orders
from sciflow.datasets.reactions.order import (
    ACCEPTANCE,
    UNMEASURED,
    measured_acceptance,
    record_group,
)
from sciflow.datasets.reactions.templates import TEMPLATES, fold_positions, template_candidates


def _elements(seed, edges):
    syms = seed.atoms.get_chemical_symbols()
    return sorted("".join(sorted((syms[i], syms[j]))) for i, j in edges)


# (SMILES, template, elements of the bonds broken, elements of the bonds formed)
CASES = [
    ("C=CC=C", "electrocyclic_4pi", [], ["CC"]),
    ("C1=CCC1", "electrocyclic_4pi_opening", ["CC"], []),
    ("C=CC=CC=C", "electrocyclic_6pi", [], ["CC"]),
    ("C1=CC=CCC1", "electrocyclic_6pi_opening", ["CC"], []),
    ("C1=CCC=C1", "sigmatropic_15H", ["CH"], ["CH"]),
    ("C=CCCC=C", "sigmatropic_33", ["CC"], ["CC"]),
    ("C=CCOC=C", "sigmatropic_33", ["CO"], ["CC"]),          # Claisen
    ("C=CCS(C)=O", "sigmatropic_23", ["CS"], ["CO"]),         # allyl sulfoxide -> sulfenate
    ("CCOC(C)=O", "retro_ene", ["CH", "CO"], ["HO"]),          # ester pyrolysis
    ("CCS(C)=O", "elimination_ei", ["CH", "CS"], ["HO"]),      # sulfoxide syn elimination
    ("CCCl", "elimination_hx", ["CH", "CCl"], ["ClH"]),
    ("CCF", "elimination_hx", ["CH", "CF"], ["FH"]),
    ("C1CO1", "ring_opening_3", ["CH", "CO"], ["CH"]),         # oxirane -> acetaldehyde
    ("C1CCC1", "retro_22", ["CC", "CC"], []),                  # cyclobutane -> 2 ethylene
    ("C=CCCCC=O", "ene", ["CH"], ["CC", "HO"]),                # carbonyl-ene ring closure
]


@pytest.mark.parametrize("smiles, name, broken, formed", CASES)
def test_templates_find_the_textbook_reaction(smiles, name, broken, formed):
    seed = seed_from_smiles(smiles)
    cands = [c for c in template_candidates(seed) if c.family.startswith(f"tpl:{name}/")]
    assert cands, f"{name} not found in {smiles}"
    assert any(_elements(seed, c.broken) == sorted(broken) and _elements(seed, c.formed) == sorted(formed)
               for c in cands)
    for c in cands:
        assert c.kind == "template" and c.id.startswith(f"{seed.name}|tpl:{name}")
        assert c.p_graph == (seed.graph - set(c.broken)) | set(c.formed)
        assert bond_orders(c.numbers, c.p_graph) is not None and c.smiles
        assert build_group(c) == f"template:{name}"


def test_aromatic_rings_are_not_pericyclic_substrates():
    seed = seed_from_smiles("c1ccccc1")
    assert not [c for c in template_candidates(seed) if "electrocyclic" in c.family]


def test_every_template_parses_and_names_are_unique():
    from rdkit import Chem

    assert len({t.name for t in TEMPLATES}) == len(TEMPLATES)
    for t in TEMPLATES:
        patt = Chem.MolFromSmarts(t.smarts)
        maps = {a.GetAtomMapNum() for a in patt.GetAtoms()}
        assert {m for e in t.broken + t.formed for m in e} <= maps


def test_folding_brings_the_forming_pair_close():
    seed = seed_from_smiles("C=CCCC=C")
    (cand,) = [c for c in template_candidates(seed) if c.family.startswith("tpl:sigmatropic_33/")]
    (i, j), = cand.formed
    pos = np.asarray(cand.positions)
    assert 2.4 <= np.linalg.norm(pos[i] - pos[j]) <= 3.2
    far = fold_positions(seed.atoms.numbers, seed.graph, [(i, j)], fold=(4.5, 5.0))
    assert far is not None and np.linalg.norm(far[i] - far[j]) > 4.0
    assert mapped_smiles(seed.atoms.numbers, seed.graph)


# ----------------------------------------------------------------------------- build order
def test_build_groups_of_every_kind():
    from sciflow.datasets.reactions.conformers import conformer_candidates

    seed = seed_from_smiles("CC(=O)NC")
    groups = {build_group(c) for c in enumerate_candidates(seed)}
    assert "bond_edit:1/1" in groups and "bond_edit:2/1" in groups
    groups = {build_group(c) for c in conformer_candidates(seed_from_smiles("CCN(C)C(C)=O"))}
    assert "conformational:partial" in groups
    assert {build_group(c) for c in conformer_candidates(seed_from_smiles("CP(C)C"))} == {"inversion:P"}


def test_measured_acceptance_shrinks_toward_the_prior():
    records = (
        [{"id": "s|-0.1+1.2", "status": "accepted"}] * 3            # legacy records: group from the id
        + [{"id": "s|-0.1+1.2", "status": "rejected", "reason": "bond_not_partial"}]
        + [{"id": "s|-0.1+1.2", "status": "rejected", "reason": "duplicate"}] * 5   # free: not counted
        + [{"id": "s|rot:0.1", "group": "conformational:partial", "status": "accepted"}] * 2
    )
    assert record_group(records[0]) == "bond_edit:1/1"
    assert record_group({"id": "s|tpl:ene-0.1+1.2", "kind": "template"}) is None
    rates = measured_acceptance(records, weight=4.0)
    assert rates["bond_edit:1/1"] == pytest.approx((3 + 4.0 * ACCEPTANCE["bond_edit:1/1"]) / (4 + 4.0))
    assert rates["conformational:partial"] == pytest.approx((2 + 4.0 * ACCEPTANCE.get("conformational:partial", UNMEASURED)) / 6)
    assert set(ACCEPTANCE) <= set(rates)


def test_interleave_follows_the_acceptance_map():
    from sciflow.datasets.reactions.conformers import conformer_candidates

    seeds = [seed_from_smiles(s) for s in ("CC(=O)OC", "C=CCCC=C")]
    cands = [c for s in seeds for c in enumerate_candidates(s) + template_candidates(s) + conformer_candidates(s)]
    names = sorted({build_group(c) for c in cands})
    rates = {g: k / len(names) for k, g in enumerate(names)}  # any order will do
    order = interleave(reversed(cands), rates)
    assert sorted(c.id for c in order) == sorted(c.id for c in cands)
    seen = [rates[build_group(c)] for c in order]
    assert seen == sorted(seen, reverse=True)
    again = interleave(cands, rates)
    assert [c.id for c in again] == [c.id for c in order]  # deterministic, whatever the input order

"""The store README (--finalize): coverage per element, kind and size, rates per kind and route, reaction keys."""

from __future__ import annotations

import json

import numpy as np
from ase import Atoms
from ase.build import molecule

from sciflow.datasets.reactions import Reaction, ReactionStore, finalize_store, read_reactions
from sciflow.datasets.reactions.report import LARGE, coverage, store_statistics


def _reaction(rid: str, atoms: Atoms, *, kind: str, family: str, key: str = "") -> Reaction:
    ts = atoms.copy()
    ts.positions += 0.05
    return Reaction(id=rid, reactant=atoms, transition_state=ts, product=atoms.copy(), energies=(0.0, 0.5, -0.1),
                    imaginary_frequency=300.0, family=family, method="GFN2-xTB", kind=kind, key_coordinate=key)


def _store(tmp_path):
    big = Atoms("C6H12", positions=np.random.default_rng(0).normal(scale=3.0, size=(18, 3)))
    rows = [
        (_reaction("a", molecule("CH3CH2OH"), kind="bond_edit", family="b:C-H|f:H-O"),
         {"route": "neb", "guess_provider": True}),
        (_reaction("b", molecule("CH3SH"), kind="conformational", family="rot:single:C-S",
                   key="dihedral:0-1-2-3:60.0/0.0/-60.0"), {"route": "guess0", "guess_provider": True}),
        (_reaction("c", molecule("PH3"), kind="inversion", family="inv:P(HHH)",
                   key="pyramidalization:0-1-2-3:-0.9/0.0/0.9"), {}),
        (_reaction("d", big, kind="template", family="tpl:sigmatropic_33/b:C-C|f:C-C"), {}),
        (_reaction("e", molecule("CH3Cl"), kind="", family="b:C-Cl|f:"), {}),  # written before kinds existed
    ]
    store = ReactionStore(tmp_path)
    for rxn, extra in rows:
        kind = rxn.kind or "bond_edit"
        store.append({"id": rxn.id, "key": rxn.id, "kind": kind, "family": rxn.family, "barrier_ev": rxn.barrier,
                      "imag_freq_cm1": 300.0, "cpu_seconds": 36.0, "seed": rxn.id, **extra}, rxn)
    store.append({"id": "f", "kind": "conformational", "group": "conformational:double", "reason": "key_unchanged",
                  "cpu_seconds": 72.0, "route": "neb", "guess_provider": True})
    store.append({"id": "g", "kind": "bond_edit", "reason": "duplicate", "cpu_seconds": 0.0})
    return store


def test_coverage_counts_elements_kinds_and_sizes(tmp_path):
    store = _store(tmp_path)
    cov = coverage(list(store.reactions()))
    assert cov["kinds"] == {"bond_edit": 2, "conformational": 1, "inversion": 1, "template": 1}
    assert cov["elements"]["S"] == 1 and cov["elements"]["P"] == 1 and cov["elements"]["Cl"] == 1
    assert cov["elements"]["H"] == 5 and cov["with_S_F_Cl_P"] == 3
    assert cov["sizes"] == {f"<= {LARGE} atoms": 4, f"> {LARGE} atoms": 1}
    assert cov["subkinds"] == {"inv:P": 1, "rot:single": 1, "tpl:sigmatropic_33": 1}


def test_rates_by_kind_and_route(tmp_path):
    st = store_statistics(_store(tmp_path))
    conf = st["by_kind"]["conformational"]
    assert conf["candidates"] == 2 and conf["accepted"] == 1  # the duplicate is not counted anywhere
    assert conf["per_core_hour"] == 1 / ((36.0 + 72.0) / 3600)
    assert st["by_route"]["model guess"]["accepted"] == 1
    assert st["by_route"]["no guess verified"]["candidates"] == 2
    assert st["with_guesses"]["with the model"]["candidates"] == 3
    assert "bond_edit" in st["by_kind"] and sum(v["candidates"] for v in st["by_kind"].values()) == 6


def test_readme_reports_coverage_targets_and_rates(tmp_path):
    _store(tmp_path)
    finalize_store(tmp_path, target=10)
    text = (tmp_path / "README.md").read_text()
    for words in ("## Coverage", "| element | reactions containing it |", "| S/F/Cl/P | 3 | 250 | 247 to go |",
                  "| total | 5 | 10 | 5 to go |", f"| > {LARGE} atoms | 1 |", "| inversion | 1 |",
                  "| conformational + inversion | 2 | 150 |", "| kind | candidates | verified |",
                  "With the TS model's guesses", "| model guess | 1 | 1 |"):
        assert words in text, words
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["coverage"]["kinds"]["template"] == 1
    # the kind and key coordinate travel with the reactions
    back = {r.id: r for r in read_reactions(tmp_path / ReactionStore.REACTIONS)}
    assert back["c"].kind == "inversion" and back["c"].key_coordinate == "pyramidalization:0-1-2-3:-0.9/0.0/0.9"
    assert back["e"].kind == ""


def test_empty_text_keys_are_left_out_and_old_misparsed_ones_read_empty():
    from sciflow.datasets.reactions.reaction import reactions_from_text, reactions_to_text

    rxn = _reaction("z", molecule("H2O"), kind="bond_edit", family="")
    text = reactions_to_text([rxn])
    assert "key_coordinate=" not in text and "family=" not in text
    back = reactions_from_text(text)[0]
    assert back.kind == "bond_edit" and back.family == "" and back.key_coordinate == ""
    # frames written while empty values were still written out: ASE reads "pbc=..." into the empty key
    old = text.replace("kind=bond_edit", "kind=bond_edit key_coordinate=")
    assert reactions_from_text(old)[0].key_coordinate == ""

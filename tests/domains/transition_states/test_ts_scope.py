"""What a model has seen (the checkpoint's scope) and what stays a clear error outside it:
charge, spin, reaction kind; size outside the trained range is a warning."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from sciflow.cli import main
from sciflow.domains.transition_states import (
    Model,
    OutOfScopeWarning,
    Scope,
    TSInputError,
    TSVelocity,
    sample,
    scope_of,
    train,
)
from sciflow.domains.transition_states.scope import charge_of, check_charge, reaction_kind


def test_shipped_checkpoint_records_what_it_has_seen(shipped):
    s = shipped.scope
    # retrained 2026-12-02 on the random train part of a 1,392-reaction snapshot (bond edits
    # only: the data held no conformational, inversion or template reactions yet)
    assert s.elements == (1, 6, 7, 8, 9, 15, 16, 17) and s.kinds == ("bond_edit",)
    assert s.charges == (0,) and s.multiplicities == (1,) and s.methods == ("GFN2-xTB",)
    assert s.max_atoms == shipped.meta["train"]["max_atoms"] == 17
    assert s.reactions == len(shipped.meta["splits"]["random"]["train"]) == 1129
    assert Scope.from_dict(s.to_dict()) == s
    assert "H C N O F P S Cl" in s.describe() and "bond_edit" in s.describe()


def test_train_records_the_scope_and_ids_of_its_data(tiny, make_reaction):
    reactions = [make_reaction(s) for s in range(3)]
    model = train(reactions, tiny.replace(train={"steps": 2}))
    assert model.meta["train"]["ids"] == [r.id for r in reactions]
    assert model.scope == scope_of(reactions)
    assert model.scope.elements == (1, 6, 7) and model.scope.kinds == ("bond_edit",)


def _model(tiny, **scope):
    base = dict(elements=(1, 6, 7, 8), kinds=("bond_edit",), kind_counts={"bond_edit": 3},
                min_atoms=3, max_atoms=5, reactions=3)
    return Model(TSVelocity(tiny), meta={"default_steps": 1,
                                         "scope": Scope(**{**base, **scope}).to_dict()})


def test_charged_or_open_shell_input_is_refused_with_the_fix(tiny, make_reaction):
    rxn = make_reaction(0)
    model = _model(tiny)
    with pytest.raises(TSInputError, match=r"charge \+2, multiplicity 1: this model was trained "
                                           r"on charge 0, multiplicity 1 only.*ts search"):
        sample(model, rxn.reactant, rxn.product, charge=2)
    with pytest.raises(TSInputError, match="multiplicity must be odd"):
        sample(model, rxn.reactant, rxn.product, multiplicity=2)
    with pytest.raises(TSInputError, match="multiplicity 3"):
        sample(model, rxn.reactant, rxn.product, multiplicity=3)
    with pytest.raises(TSInputError, match="23 electrons"):  # a radical read as a singlet
        check_charge(Atoms("CNOHH").numbers, 0, 1)


def test_a_charge_in_the_input_file_is_read_and_refused(tmp_path, make_reaction, capsys):
    rxn = make_reaction(0)
    r, p = rxn.reactant.copy(), rxn.product.copy()
    r.info["charge"] = -2
    ase.io.write(tmp_path / "r.extxyz", r)
    ase.io.write(tmp_path / "p.extxyz", p)
    assert charge_of(ase.io.read(tmp_path / "r.extxyz")) == (-2, 1)
    argv = ["ts", "generate", "--reactant", str(tmp_path / "r.extxyz"), "--product",
            str(tmp_path / "p.extxyz"), "-o", str(tmp_path / "ts.xyz")]
    assert main(argv) == 2
    assert "charge -2, multiplicity 1: this model was trained on charge 0" in capsys.readouterr().err
    assert main(argv + ["--charge", "0"]) == 0  # the flag overrides the file


def test_a_reaction_kind_the_model_has_not_seen_is_refused(tiny):
    # ethane rotated about C-C by 60 degrees: one bond graph, a conformational change
    from ase.build import molecule

    from sciflow.datasets.reactions.conformers import moving_side, rotate_about_bond
    from sciflow.datasets.reactions.molgraph import bond_graph

    r = molecule("C2H6")
    side = moving_side(len(r), bond_graph(r), 0, 1)
    p = Atoms(r.numbers, positions=rotate_about_bond(r.get_positions(), 0, 1, side, 60.0))
    assert reaction_kind(r, p) == "conformational"
    with pytest.raises(TSInputError, match="same bond graph.*seen only bond_edit"):
        sample(_model(tiny, max_atoms=8), r, p)
    ok = sample(_model(tiny, kinds=("bond_edit", "conformational"), max_atoms=8), r, p)
    assert np.isfinite(ok.best.get_positions()).all()


def test_larger_molecules_than_trained_on_get_a_warning(tiny, make_reaction):
    rxn = make_reaction(0)  # 5 atoms
    with pytest.warns(OutOfScopeWarning, match="trained on molecules of 3-4 atoms"):
        sample(_model(tiny, max_atoms=4), rxn.reactant, rxn.product)

"""Input checks and frames of the TS generator's data layer: every bad input is a clear error."""

import numpy as np
import pytest
import torch
from ase import Atoms

from sciflow.domains.transition_states.data import (
    TSInputError,
    check_endpoints,
    collate,
    condition_of,
    endpoints_to_data,
    prepare_endpoints,
    reaction_to_graph,
)
from sciflow.domains.transition_states.files import read_endpoint
from sciflow.domains.transition_states.smiles import endpoints_from_smiles
from sciflow.errors import InputError
from sciflow.testing import random_orthogonal


def _molecule(seed: int = 0, symbols: str = "CNOHH") -> Atoms:
    symbols = Atoms(symbols).get_chemical_symbols()
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < len(symbols):
        x = rng.normal(scale=1.2, size=3)
        if all(np.linalg.norm(x - p) > 1.0 for p in pos):
            pos.append(x)
    return Atoms(symbols, positions=np.array(pos))


def test_different_atom_counts_named():
    with pytest.raises(TSInputError, match="reactant has 5 atoms but product has 4"):
        check_endpoints(_molecule(), _molecule(1, "CNOH"))


def test_different_element_order_named():
    r, p = _molecule(), _molecule(1, "NCOHH")
    with pytest.raises(TSInputError, match=r"differ first at atom 0 \(C vs N\)"):
        check_endpoints(r, p)


def test_nan_coordinates_named():
    p = _molecule(1)
    pos = p.get_positions()
    pos[2, 1] = np.nan
    p.set_positions(pos)
    with pytest.raises(TSInputError, match=r"product has non-finite .* atom\(s\) \[2\]"):
        check_endpoints(_molecule(), p)


def test_overlapping_atoms_named():
    r = _molecule()
    pos = r.get_positions()
    pos[4] = pos[3] + [0.1, 0.0, 0.0]
    r.set_positions(pos)
    with pytest.raises(TSInputError, match=r"reactant has overlapping atoms: H3 and H4 are 0.100 A"):
        check_endpoints(r, _molecule(1))


def test_element_outside_training_set_named():
    r, p = _molecule(0, "CSiOHH"), _molecule(1, "CSiOHH")
    with pytest.raises(TSInputError, match=r"element\(s\) Si are outside the model's training set"):
        check_endpoints(r, p)


def test_prepare_centres_reactant_and_aligns_product():
    r, p = _molecule(0), _molecule(1)
    ep = prepare_endpoints(r, p)
    np.testing.assert_allclose(ep.reactant.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ep.origin, r.get_positions().mean(0))
    # moving the product rigidly (rotation, translation) does not change its aligned copy
    q = random_orthogonal(1, proper=True, generator=torch.Generator().manual_seed(3))[0].numpy()
    moved = Atoms(p.numbers, positions=p.get_positions() @ q.T + [5.0, -2.0, 1.0])
    np.testing.assert_allclose(prepare_endpoints(r, moved).product, ep.product, atol=1e-10)
    # the aligned product keeps its internal geometry
    d = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(ep.product), d(p.get_positions()), atol=1e-10)


def test_batch_condition_layout():
    eps = [prepare_endpoints(_molecule(s), _molecule(s + 10)) for s in range(3)]
    batch = collate([endpoints_to_data(ep) for ep in eps])
    cond = condition_of(batch)
    assert cond.features.shape == (15, 8) and torch.all(cond.features.sum(1) == 1)
    assert cond.reactant.shape == cond.product.shape == (15, 3)
    assert batch.batch.tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_reaction_smiles_embeds_both_ends_in_map_order():
    r, p = endpoints_from_smiles("[H:1][N:2]=[C:3]=[O:4]>>[N:2]#[C:3][O:4][H:1]")
    assert list(r.get_chemical_symbols()) == ["H", "N", "C", "O"] == list(p.get_chemical_symbols())
    # atom 1 (H) is bonded to N in R and to O in P
    assert r.get_distance(0, 1) < 1.2 and p.get_distance(0, 3) < 1.2
    check_endpoints(r, p)


@pytest.mark.parametrize("smiles, message", [
    ("C=O>>C=O", "unmapped atom"),
    ("[C:1]=[O:2]>>[C:1]=[N:2]", "atom map 2 is O in the reactant but N in the product"),
    ("[H:1][N:2]=[C:3]=[O:4]>>[N:2]#[C:3][O:5][H:1]", "only in the reactant [4], only in the product [5]"),
    ("[H:1][N:1]=[C:3]=[O:4]>>[N:1]#[C:3][O:4][H:1]", "uses atom-map number(s) [1] twice"),
    ("[C:1]=[O:2]", "must read 'reactants>>products'"),
    ("[C:1]=[O:2]>>[C:1](=[O:2]", "could not be parsed"),
])
def test_bad_reaction_smiles_named(smiles, message):
    with pytest.raises(TSInputError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        endpoints_from_smiles(smiles)


def test_missing_endpoint_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="reactant file .*nope.xyz' does not exist"):
        read_endpoint(tmp_path / "nope.xyz", "reactant")


def test_input_errors_are_sciflow_input_errors_and_moved_names_still_import():
    import sciflow.domains.transition_states.data as data

    assert issubclass(TSInputError, InputError) and issubclass(TSInputError, ValueError)
    assert data.read_endpoint is read_endpoint and data.endpoints_from_smiles is endpoints_from_smiles


def test_single_atom_reaction_is_refused():
    one = Atoms("C", positions=[[0, 0, 0]])
    with pytest.raises(TSInputError, match=r"reactant has 1 atom\(s\); a reaction needs at least 2"):
        check_endpoints(one, one.copy())


def test_training_reaction_with_nan_coordinates_is_named():
    from sciflow.datasets.reactions import Reaction

    r, p = _molecule(0), _molecule(1)
    ts = r.copy()
    pos = ts.get_positions()
    pos[1, 0] = np.nan
    ts.set_positions(pos)
    rxn = Reaction(id="bad1", reactant=r, transition_state=ts, product=p, energies=(0.0, 1.0, 0.5),
                   family="x")
    with pytest.raises(TSInputError, match="reaction 'bad1': the transition state has non-finite"):
        reaction_to_graph(rxn)

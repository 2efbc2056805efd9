"""Reaction data model, store, splits, Transition1x reader and PyG dataset (no calculator runs)."""

from __future__ import annotations

import concurrent.futures
import gzip
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from sciflow.datasets.reactions import (
    Reaction,
    ReactionFormatError,
    ReactionStore,
    Transition1xReader,
    make_splits,
    read_reactions,
    read_split,
    write_reactions,
    write_splits,
)
from sciflow.datasets.reactions.align import kabsch_align, kabsch_rmsd
from sciflow.datasets.reactions.candidates import (
    DEFAULT_SMILES,
    SeedError,
    canonical_smiles,
    enumerate_candidates,
    interleave,
    mapped_smiles,
    seed_from_atoms,
    seed_from_smiles,
    smiles_seeds,
)
from sciflow.datasets.reactions.molgraph import bond_graph, bond_orders, reaction_key


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _fake_reaction(rid: str, rng: np.random.Generator, *, name: str = "CH3CHO", family: str = "b:C-H|f:H-O") -> Reaction:
    r = molecule(name)
    ts = r.copy()
    ts.positions += rng.normal(scale=0.1, size=ts.positions.shape)
    p = r.copy()
    p.positions = p.positions @ _rotation(rng).T + rng.normal(scale=0.2, size=p.positions.shape) + 3.0
    return Reaction(id=rid, reactant=r, transition_state=ts, product=p, energies=(-1.0, 0.5, -1.2),
                    imaginary_frequency=812.5, smiles="[C:1]>>[C:1]", family=family, method="GFN2-xTB",
                    software="ase=3.29;tblite=0.8", settings="a=1;flag=True", origin="intended", source=f"seed/{rid}")


# ----------------------------------------------------------------------------- bond graphs
def test_bond_orders_closed_shell_and_radical():
    form = seed_from_smiles("NC=O")
    orders = bond_orders(form.atoms.numbers, form.graph)
    assert orders is not None and sorted(orders.values()).count(2) == 1  # one C=O double bond
    ch3 = Atoms("CH3", positions=[[0, 0, 0], [1.08, 0, 0], [-0.54, 0.93, 0], [-0.54, -0.93, 0]])
    assert bond_orders(ch3.numbers, bond_graph(ch3)) is None  # methyl radical has no closed-shell assignment


def test_reaction_key_is_direction_and_relabel_invariant():
    seed = seed_from_smiles("CC=O")
    cands = enumerate_candidates(seed)
    c = cands[0]
    n = len(c.numbers)
    perm = np.random.default_rng(0).permutation(n)
    inv = np.argsort(perm)
    relabel = lambda g: frozenset(tuple(sorted((int(inv[i]), int(inv[j])))) for i, j in g)  # noqa: E731
    numbers = np.asarray(c.numbers)[perm]
    k = reaction_key(c.numbers, c.r_graph, c.p_graph)
    assert k == reaction_key(c.numbers, c.p_graph, c.r_graph)
    assert k == reaction_key(numbers, relabel(c.r_graph), relabel(c.p_graph))
    assert len({reaction_key(x.numbers, x.r_graph, x.p_graph) for x in cands}) == len(cands)


# ----------------------------------------------------------------------------- seeds and candidates
@pytest.mark.parametrize("smiles, word", [("[NH4+]", "charged"), ("[CH3]", "radical"), ("C1CC", "parsed")])
def test_bad_seed_smiles_raise_clear_errors(smiles, word):
    with pytest.raises(SeedError, match=word):
        seed_from_smiles(smiles)


def test_unknown_element_seed_is_refused():
    with pytest.raises(SeedError, match="elements"):
        seed_from_atoms("silane", molecule("SiH4"))
    assert seed_from_atoms("hcl", molecule("HCl")).graph == {(0, 1)}  # Cl is covered now


def test_curated_seed_list_is_valid_small_and_free_of_repeats():
    seeds, skipped = smiles_seeds(DEFAULT_SMILES)
    assert skipped == {}  # every curated SMILES embeds as a closed-shell C/H/N/O molecule
    assert all(2 <= len(s.atoms) <= 12 for s in seeds)
    names = [canonical_smiles(s) for s in seeds]
    assert len(set(names)) == len(names) == len(DEFAULT_SMILES)


def test_build_order_puts_the_edits_that_verify_most_often_first():
    seeds = [seed_from_smiles(s) for s in ("NC=O", "CC=O")]
    cands = [c for s in seeds for c in enumerate_candidates(s, max_break=2, max_form=2)]
    order = interleave(reversed(cands))
    assert sorted(c.id for c in order) == sorted(c.id for c in cands)  # nothing lost or repeated
    kinds = [(len(c.broken), len(c.formed)) for c in order]
    rank = [0 if k == (1, 1) else 1 if k == (2, 1) else 2 for k in kinds]
    assert rank == sorted(rank) and rank[0] == 0 and 1 in rank and 2 in rank
    first = [c.seed for c in order[:2]]
    assert len(set(first)) == 2  # round-robin over seeds inside a tier


def test_candidates_are_mapped_closed_shell_edits():
    seed = seed_from_smiles("NC=O")
    cands = enumerate_candidates(seed, max_break=2, max_form=2)
    assert cands
    for c in cands:
        assert c.r_graph == seed.graph
        assert 1 <= len(c.broken) + len(c.formed) <= 4
        assert c.p_graph == (c.r_graph - set(c.broken)) | set(c.formed)
        assert bond_orders(c.numbers, c.p_graph) is not None
        # atom-mapped: every atom keeps its map number on both sides
        r, p = c.smiles.split(">>")
        maps = lambda s: sorted(int(x) for x in __import__("re").findall(r":(\d+)\]", s))  # noqa: E731
        assert maps(r) == maps(p) == list(range(1, len(c.numbers) + 1))
    # the textbook amide -> imidic acid 1,3-H shift is among them
    n_idx = [k for k, z in enumerate(c.numbers) if z == 7][0]
    o_idx = [k for k, z in enumerate(c.numbers) if z == 8][0]
    assert any(len(c.broken) == 1 and len(c.formed) == 1 and n_idx in c.broken[0] and o_idx in c.formed[0]
               for c in cands)


def test_mapped_smiles_of_radical_graph_is_empty():
    ch3 = Atoms("CH3", positions=[[0, 0, 0], [1.08, 0, 0], [-0.54, 0.93, 0], [-0.54, -0.93, 0]])
    assert mapped_smiles(ch3.numbers, bond_graph(ch3)) == ""


# ----------------------------------------------------------------------------- Reaction + extxyz
@pytest.mark.parametrize("suffix", [".extxyz", ".extxyz.gz"])
def test_extxyz_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(1)
    rxns = [_fake_reaction(f"r{k}|-0.3+2.3", rng) for k in range(3)]
    path = tmp_path / f"x{suffix}"
    write_reactions(path, rxns)
    back = read_reactions(path)
    assert [r.id for r in back] == [r.id for r in rxns]
    for a, b in zip(rxns, back):
        assert a.energies == b.energies and a.settings == b.settings and a.smiles == b.smiles
        for fa, fb in zip(a.frames(), b.frames()):
            np.testing.assert_allclose(fa.positions, fb.positions, atol=1e-7)
            np.testing.assert_array_equal(fa.numbers, fb.numbers)
    assert back[0].barrier == pytest.approx(1.5)


def test_reaction_refuses_mismatched_atoms():
    r = molecule("CH3CHO")
    with pytest.raises(ReactionFormatError, match="share one atom order"):
        Reaction(id="x", reactant=r, transition_state=r[:-1], product=r, energies=(0.0, 1.0, 0.0))
    other = r.copy()
    other.numbers[0] = 7
    with pytest.raises(ReactionFormatError, match="atomic numbers differ"):
        Reaction(id="x", reactant=r, transition_state=other, product=r, energies=(0.0, 1.0, 0.0))


# ----------------------------------------------------------------------------- store
def test_store_resumes_after_a_torn_write(tmp_path):
    rng = np.random.default_rng(2)
    store = ReactionStore(tmp_path)
    store.append({"id": "a", "key": "ka"}, _fake_reaction("a", rng))
    store.append({"id": "b", "reason": "wrong_connectivity", "detail": ""})
    store.append({"id": "c", "key": "kc"}, _fake_reaction("c", rng))
    # a kill in the middle of the next write: half a gzip member and half a record line
    with open(tmp_path / ReactionStore.REACTIONS, "ab") as fh:
        fh.write(gzip.compress(b"3\nxx")[:10])
    with open(tmp_path / ReactionStore.RECORDS, "a") as fh:
        fh.write('{"id": "d", "sta')
    size = (tmp_path / ReactionStore.REACTIONS).stat().st_size
    again = ReactionStore(tmp_path)
    assert again.done_ids() == {"a", "b", "c"}
    assert [r.id for r in again.reactions()] == ["a", "c"]
    assert (tmp_path / ReactionStore.REACTIONS).stat().st_size == size  # reading never truncates
    assert again.rejection_reasons() == {"wrong_connectivity": 1}
    again.append({"id": "d", "key": "kd"}, _fake_reaction("d", rng))  # the writer repairs first
    # the repaired file is one ordinary (multi-member) gzip file
    assert [r.id for r in read_reactions(tmp_path / ReactionStore.REACTIONS)] == ["a", "c", "d"]
    assert [r.id for r in ReactionStore(tmp_path).reactions()] == ["a", "c", "d"]
    for line in (tmp_path / ReactionStore.RECORDS).read_text().splitlines():
        json.loads(line)


# ----------------------------------------------------------------------------- splits
@pytest.mark.parametrize("kind", ["random", "family", "composition"])
def test_splits_partition_and_hold_out_groups(kind, tmp_path):
    rng = np.random.default_rng(3)
    names = ["CH3CHO", "CH3OH", "HCOOH", "CH3CH2OH", "H2CO"]
    fams = ["b:C-H|f:H-O", "b:H-O|f:C-H", "b:C-O|f:", "b:|f:C-C"]
    rxns = [_fake_reaction(f"r{k}", rng, name=names[k % 5], family=fams[k % 4]) for k in range(120)]
    split = make_splits(rxns, kind=kind, seed=7)
    ids = split["train"] + split["val"] + split["test"]
    assert sorted(ids) == sorted(r.id for r in rxns)
    assert split["test"] and split["train"]
    assert split == make_splits(rxns, kind=kind, seed=7)
    if kind != "random":
        group = {r.id: (r.family if kind == "family" else r.formula) for r in rxns}
        train_groups = {group[i] for i in split["train"]}
        assert not train_groups & {group[i] for i in split["test"] + split["val"]}
    if kind == "random":  # a reaction keeps its side when the dataset grows
        small = make_splits(rxns[:60], kind=kind, seed=7)
        for side in ("train", "val", "test"):
            assert set(small[side]) <= set(split[side])
    paths = write_splits(rxns, tmp_path, seed=7)
    assert read_split(tmp_path / f"split_{kind}.json") == split
    assert len(paths) == 3


def test_split_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        make_splits([], fractions=(0.5, 0.5, 0.5))


# ----------------------------------------------------------------------------- Transition1x
def _write_t1x(path, rng):
    import h5py

    layout = {"train": {"C2H4O": ["rxn0001", "rxn0002"], "CH2O2": ["rxn0003"]}, "val": {"C2H4O": ["rxn0004"]},
              "test": {"CH2O2": ["rxn0005"]}}
    truth = {}
    with h5py.File(path, "w") as fh:
        for split, by_formula in layout.items():
            for formula, rxns in by_formula.items():
                atoms = molecule("CH3CHO" if formula == "C2H4O" else "HCOOH")
                n = len(atoms)
                for rxn in rxns:
                    g = fh.create_group(f"data/{split}/{formula}/{rxn}")
                    frames = 7
                    pos = atoms.positions[None] + rng.normal(scale=0.1, size=(frames, n, 3))
                    g["positions"] = pos
                    g["atomic_numbers"] = atoms.numbers
                    g["wB97x_6-31G(d).energy"] = rng.normal(size=frames) - 5000
                    g["wB97x_6-31G(d).forces"] = rng.normal(size=(frames, n, 3))
                    e = {}
                    for k, sub in ((0, "reactant"), (3, "transition_state"), (6, "product")):
                        s = g.create_group(sub)
                        s["positions"] = pos[k : k + 1]
                        s["atomic_numbers"] = atoms.numbers
                        s["wB97x_6-31G(d).energy"] = g["wB97x_6-31G(d).energy"][k : k + 1]
                        s["wB97x_6-31G(d).forces"] = g["wB97x_6-31G(d).forces"][k : k + 1]
                        e[sub] = (float(g["wB97x_6-31G(d).energy"][k]), pos[k])
                    truth[f"{formula}/{rxn}"] = e
    return truth


def test_transition1x_reader_splits_ids_and_frames(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "t1x.h5"
    truth = _write_t1x(path, rng)
    train = Transition1xReader(path, split="train")
    assert len(train) == 3 and sorted(train.ids) == ["C2H4O/rxn0001", "C2H4O/rxn0002", "CH2O2/rxn0003"]
    for rxn in train:
        t = truth[rxn.id]
        assert rxn.energies == (t["reactant"][0], t["transition_state"][0], t["product"][0])
        np.testing.assert_allclose(rxn.transition_state.positions, t["transition_state"][1])
        assert rxn.method == "wB97x/6-31G(d)"
    assert [r.id for r in Transition1xReader(path, split="test")] == ["CH2O2/rxn0005"]
    everything = Transition1xReader(path, split=None)
    assert len(everything) == 5
    chosen = Transition1xReader(path, split=None, ids=["rxn0005", "C2H4O/rxn0001"])
    assert [r.id for r in chosen] == ["CH2O2/rxn0005", "C2H4O/rxn0001"]
    (tmp_path / "ids.txt").write_text("# React-OT style list\nC2H4O/rxn0002\nrxn0004\n")
    assert Transition1xReader.from_id_file(path, tmp_path / "ids.txt").ids == ["C2H4O/rxn0002", "C2H4O/rxn0004"]
    with pytest.raises(KeyError, match="rxn9999"):
        Transition1xReader(path, split=None, ids=["rxn9999"])
    with pytest.raises(ValueError, match="split"):
        Transition1xReader(path, split="training")
    rid, z, pos, e, f = next(iter(Transition1xReader(path, split="val").iter_frames()))
    assert rid == "C2H4O/rxn0004" and pos.shape == (7, len(z), 3) and e.shape == (7,) and f.shape == pos.shape


# ----------------------------------------------------------------------------- PyG dataset + Kabsch
def test_kabsch_recovers_a_rotation():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 3))
    y = x @ _rotation(rng).T + rng.normal(size=3)
    np.testing.assert_allclose(kabsch_align(x, y), y, atol=1e-10)
    assert kabsch_rmsd(x, y) < 1e-10
    mirror = x * np.array([1.0, 1.0, -1.0])
    assert kabsch_rmsd(mirror, x) > 0.1  # proper rotations only: no mirror images


def test_graph_dataset_fields_and_frame_invariance():
    import torch
    from torch_geometric.loader import DataLoader

    from sciflow.datasets.reactions import ReactionGraphDataset

    rng = np.random.default_rng(6)
    rxn = _fake_reaction("r", rng)
    moved_ts = rxn.transition_state.copy()
    moved_ts.positions = moved_ts.positions @ _rotation(rng).T - 4.0
    moved = Reaction(id="m", reactant=rxn.reactant, transition_state=moved_ts, product=rxn.product,
                     energies=rxn.energies)
    ds = ReactionGraphDataset([rxn, moved, _fake_reaction("s", rng, name="HCOOH")])
    d0, d1 = ds[0], ds[1]
    assert torch.allclose(d0.x.sum(1), torch.ones(len(d0.z)))
    assert torch.allclose(d0.pos_r.mean(0), torch.zeros(3), atol=1e-6)
    assert torch.allclose(d0.pos_ts, d1.pos_ts, atol=1e-5)  # TS input frame does not matter
    assert torch.allclose(d0.pos_p.mean(0), torch.zeros(3), atol=1e-5)
    assert d0.barrier.item() == pytest.approx(rxn.barrier)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.num_graphs == 3 and batch.energy.shape == (3, 3) and batch.pos_ts.shape == batch.pos_r.shape
    with pytest.raises(ValueError, match="outside elements"):
        ReactionGraphDataset([rxn], elements=(1, 6))


def test_seed_sources_skip_bad_input_with_reasons(tmp_path):
    import ase.io

    from sciflow.datasets.reactions import g2_seeds, smiles_seeds, xyz_seeds

    seeds, skipped = g2_seeds(max_atoms=12)
    assert seeds and all(len(s.atoms) <= 12 and set(s.atoms.numbers) <= {1, 6, 7, 8} for s in seeds)
    assert "CH3" in skipped and "SiH4" in skipped  # a radical and a foreign element, each with a reason
    ch3 = Atoms("CH3", positions=[[0, 0, 0], [1.08, 0, 0], [-0.54, 0.93, 0], [-0.54, -0.93, 0]])
    ase.io.write(tmp_path / "in.xyz", [molecule("CH3OH"), ch3])
    good, bad = xyz_seeds([str(tmp_path / "in.xyz"), str(tmp_path / "missing.xyz")])
    assert [s.atoms.get_chemical_formula() for s in good] == ["CH4O"]
    assert any("closed-shell" in why for why in bad.values()) and any("could not read" in why for why in bad.values())
    good, bad = smiles_seeds(["CO", "[OH]", "not a smiles"])
    assert len(good) == 1 and set(bad) == {"[OH]", "not a smiles"}


def test_one_writer_per_store(tmp_path):
    store = ReactionStore(tmp_path)
    with store.writer_lock(wait=False) as held:
        assert held
        with ReactionStore(tmp_path).writer_lock(wait=False) as second:
            assert not second  # a second writer on the same store is refused
        from sciflow.datasets.reactions import EMTFactory, build_dataset, emt_candidates

        with pytest.raises(RuntimeError, match="another builder"):
            build_dataset(emt_candidates(metals=("Cu",), adatoms=("Cu",), facets=("100",)), tmp_path,
                          calculator=EMTFactory(), executor=concurrent.futures.ThreadPoolExecutor(1), progress=False)
    with ReactionStore(tmp_path).writer_lock(wait=False) as again:
        assert again


def test_product_seeds_expand_the_network():
    from sciflow.datasets.reactions.candidates import product_seeds

    rng = np.random.default_rng(8)
    one = _fake_reaction("a", rng, name="CH3OH")
    one = Reaction(id="a", reactant=one.reactant, transition_state=one.reactant, product=molecule("CH3OH"),
                   energies=one.energies)
    apart = molecule("H2O")
    apart.positions[0] += [0.0, 0.0, 5.0]  # O far from both H: not one molecule
    two = Reaction(id="b", reactant=apart, transition_state=apart, product=apart, energies=(0.0, 1.0, 0.0))
    seeds, skipped = product_seeds([one, one, two])
    assert [s.name for s in seeds] == ["net/CO"]  # the same product twice gives one seed
    assert "b" in skipped

"""The Transition1x reader on a file written in the published layout (and the older nested one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

from sciflow.datasets.reactions import Transition1xReader

SPLIT = {"train": {"C2H4O": ["rxn0001", "rxn0002"], "CH2O2": ["rxn0003"]},
         "val": {"C2H4O": ["rxn0004"]}, "test": {"CH2O2": ["rxn0005"]}}
E, F = "wB97x_6-31G(d).energy", "wB97x_6-31G(d).forces"


def _fill(g, atoms, rng) -> dict[str, tuple[float, np.ndarray]]:
    frames, n = 7, len(atoms)
    pos = atoms.positions[None] + rng.normal(scale=0.1, size=(frames, n, 3))
    g["positions"], g["atomic_numbers"] = pos, atoms.numbers
    g[E], g[F] = rng.normal(size=frames) - 5000, rng.normal(size=(frames, n, 3))
    truth = {}
    for k, name in ((0, "reactant"), (3, "transition_state"), (6, "product")):
        s = g.create_group(name)
        s["positions"], s["atomic_numbers"] = pos[k:k + 1], atoms.numbers
        s[E], s[F] = g[E][k:k + 1], g[F][k:k + 1]
        truth[name] = (float(g[E][k]), pos[k])
    return truth


def write_published(path: Path, rng: np.random.Generator) -> dict[str, dict]:
    """data/<formula>/<rxn> for every reaction; train/val/test/<formula>/<rxn> hard links to them
    (how the published file and its official loader see it)."""
    import h5py

    truth = {}
    with h5py.File(path, "w") as fh:
        for split, by_formula in SPLIT.items():
            for formula, rxns in by_formula.items():
                atoms = molecule("CH3CHO" if formula == "C2H4O" else "HCOOH")
                for rxn in rxns:
                    g = fh.create_group(f"data/{formula}/{rxn}")
                    truth[f"{formula}/{rxn}"] = _fill(g, atoms, rng)
                    fh[f"{split}/{formula}/{rxn}"] = g  # an HDF5 hard link, no copy
    return truth


def test_published_layout_splits_ids_and_values(tmp_path: Path) -> None:
    path = tmp_path / "Transition1x.h5"
    truth = write_published(path, np.random.default_rng(4))
    train = Transition1xReader(path, split="train")
    assert train.layout == "published"
    assert sorted(train.ids) == ["C2H4O/rxn0001", "C2H4O/rxn0002", "CH2O2/rxn0003"]
    for rxn in train:
        t = truth[rxn.id]
        assert rxn.energies == (t["reactant"][0], t["transition_state"][0], t["product"][0])
        np.testing.assert_allclose(rxn.transition_state.positions, t["transition_state"][1])
        np.testing.assert_allclose(rxn.reactant.positions, t["reactant"][1])
    assert [r.id for r in Transition1xReader(path, split="test")] == ["CH2O2/rxn0005"]
    everything = Transition1xReader(path, split=None)
    assert len(everything) == 5 and len(set(everything.ids)) == 5  # data/, no split counted twice
    chosen = Transition1xReader(path, split=None, ids=["rxn0005", "C2H4O/rxn0001"])
    assert [r.id for r in chosen] == ["CH2O2/rxn0005", "C2H4O/rxn0001"]
    (tmp_path / "ids.txt").write_text("# React-OT style list\nC2H4O/rxn0002\nrxn0004\n")
    assert Transition1xReader.from_id_file(path, tmp_path / "ids.txt").ids == [
        "C2H4O/rxn0002", "C2H4O/rxn0004"]
    rid, z, pos, e, f = next(iter(Transition1xReader(path, split="val").iter_frames()))
    assert rid == "C2H4O/rxn0004" and pos.shape == (7, len(z), 3) and e.shape == (7,)


def test_nested_layout_still_reads(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "nested.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as fh:
        _fill(fh.create_group("data/test/CH2O2/rxn0005"), molecule("HCOOH"), rng)
    reader = Transition1xReader(path, split="test")
    assert reader.layout == "nested" and reader.ids == ["CH2O2/rxn0005"]
    assert next(iter(reader)).transition_state.get_chemical_formula() == "CH2O2"


def test_empty_selection_and_foreign_files_fail_loudly(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "t1x.h5"
    write_published(path, np.random.default_rng(0))
    with h5py.File(path, "a") as fh:
        del fh["val"]
    with pytest.raises(ValueError, match=r"no reaction in split\(s\) \['val'\].*top-level"):
        Transition1xReader(path, split="val")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="neither 'data' nor 'train'"):
        Transition1xReader(other, split="train")
    with pytest.raises(KeyError, match="rxn9999"):
        Transition1xReader(path, split=None, ids=["rxn9999"])
    with pytest.raises(ValueError, match="split"):
        Transition1xReader(path, split="training")

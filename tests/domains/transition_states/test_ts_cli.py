"""`sciflow ts ...`: generate from files and SMILES, evaluate, and clear errors for bad input."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from sciflow.cli import main
from sciflow.domains.transition_states import load_generator
from sciflow.domains.transition_states.demo import shipped_test_reactions


@pytest.fixture(scope="module")
def reaction():
    return shipped_test_reactions(load_generator())[0]


def _write_ends(tmp_path, reaction, fmt="xyz"):
    r, p = tmp_path / f"r.{fmt}", tmp_path / f"p.{fmt}"
    ase.io.write(r, reaction.reactant)
    ase.io.write(p, reaction.product)
    return r, p


def test_generate_writes_a_ts_on_the_reactant_frame(tmp_path, reaction, capsys):
    r, p = _write_ends(tmp_path, reaction)
    out = tmp_path / "ts.xyz"
    assert main(["ts", "generate", "--reactant", str(r), "--product", str(p), "--samples", "3",
                 "--samples-out", str(tmp_path / "all.xyz"), "-o", str(out)]) == 0
    ts = ase.io.read(out)
    assert list(ts.numbers) == list(reaction.numbers)
    assert np.allclose(ts.get_positions().mean(0), reaction.reactant.get_positions().mean(0), atol=1e-4)
    assert len(ase.io.read(tmp_path / "all.xyz", index=":")) == 3
    assert "ranked by medoid" in capsys.readouterr().out


def test_generate_reads_any_ase_format(tmp_path, reaction):
    r, p = _write_ends(tmp_path, reaction, fmt="traj")
    assert main(["ts", "generate", "--reactant", str(r), "--product", str(p),
                 "-o", str(tmp_path / "ts.pdb")]) == 0
    assert len(ase.io.read(tmp_path / "ts.pdb")) == len(reaction.numbers)


def test_generate_from_reaction_smiles(tmp_path):
    out = tmp_path / "ts.xyz"
    assert main(["ts", "generate", "--reaction-smiles",
                 "[H:1][N:2]=[C:3]=[O:4]>>[N:2]#[C:3][O:4][H:1]", "-o", str(out)]) == 0
    assert ase.io.read(out).get_chemical_symbols() == ["H", "N", "C", "O"]


@pytest.mark.parametrize("case, message", [
    ("counts", "reactant has 4 atoms but product has 3"),
    ("order", "element orders differ first at atom 0"),
    ("overlap", "overlapping atoms"),
    ("element", "outside the model's training set"),
    ("smiles", "unmapped atom"),
    ("checkpoint", "does not exist"),
    ("missing", "product file"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, case, message):
    good = Atoms("HNCO", positions=[[0, 0, 0], [1.0, 0, 0], [2.2, 0, 0], [3.4, 0, 0]])
    r, p = tmp_path / "r.xyz", tmp_path / "p.xyz"
    ase.io.write(r, good)
    other = {"counts": Atoms("HNC", positions=good.positions[:3]),
             "order": Atoms("NHCO", positions=good.positions),
             "overlap": Atoms("HNCO", positions=[[0, 0, 0], [0.2, 0, 0], [2.2, 0, 0], [3.4, 0, 0]]),
             "element": Atoms("HNCS", positions=good.positions)}.get(case, good)
    ase.io.write(p, other)
    if case == "element":
        ase.io.write(r, other)
    args = ["ts", "generate", "--reactant", str(r), "--product", str(p), "-o", str(tmp_path / "o.xyz")]
    if case == "smiles":
        args = ["ts", "generate", "--reaction-smiles", "C=O>>C=O", "-o", str(tmp_path / "o.xyz")]
    elif case == "checkpoint":
        args += ["--checkpoint", str(tmp_path / "nothing.pt")]
    elif case == "missing":
        args[5] = str(tmp_path / "absent.xyz")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o.xyz").exists()


def test_evaluate_prints_rmsd_and_writes_json(tmp_path, capsys):
    from sciflow.datasets.reactions import write_reactions

    gen = load_generator()
    data = tmp_path / "few.extxyz"
    write_reactions(data, shipped_test_reactions(gen)[:3])
    out = tmp_path / "ev.json"
    assert main(["ts", "evaluate", "--data", str(data), "--no-energies", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 reactions" in text and "RMSD" in text
    import json

    doc = json.loads(out.read_text())
    assert len(doc["rows"]) == 3 and doc["summary"]["reactions"] == 3


def test_ts_group_lists_its_commands(capsys):
    with pytest.raises(SystemExit):
        main(["ts", "--help"])
    text = capsys.readouterr().out
    for command in ("generate", "train", "evaluate", "build-dataset"):
        assert command in text

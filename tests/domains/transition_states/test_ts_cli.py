"""`sciflow ts ...`: generate from files and SMILES, evaluate, train, and the flag vocabulary."""

import json
import subprocess
import sys

import ase.io
import numpy as np
import pytest
from ase import Atoms

from sciflow.cli import main


@pytest.fixture
def reaction(shipped_test):
    return shipped_test[0]


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
             "element": Atoms("HNCSi", positions=good.positions)}.get(case, good)
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


def test_evaluate_prints_rmsd_and_writes_strict_json(tmp_path, capsys, shipped_test):
    from sciflow.datasets.reactions import write_reactions

    data = tmp_path / "few.extxyz"
    write_reactions(data, shipped_test[:3])
    out = tmp_path / "ev.json"
    assert main(["ts", "evaluate", "--data", str(data), "--no-energies", "-o", str(out),
                 "--sample-steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "3 reactions" in text and "RMSD" in text and "euler x 2" in text

    def refuse(token):
        raise ValueError(f"bare {token}")

    doc = json.loads(out.read_text(), parse_constant=refuse)  # no NaN: energies are null
    assert len(doc["rows"]) == 3 and doc["summary"]["reactions"] == 3
    assert doc["summary"]["abs_de_mean"] is None


def test_solver_flags_follow_the_vocabulary(tmp_path, reaction, capsys):
    """--solver / --sample-steps; --method stays as a hidden alias; --steps is training only."""
    r, p = _write_ends(tmp_path, reaction)
    base = ["ts", "generate", "--reactant", str(r), "--product", str(p)]
    assert main(base + ["--solver", "rk4", "--sample-steps", "2", "-o", str(tmp_path / "a.xyz")]) == 0
    # one sample: the P->R generation for the uncertainty doubles the evaluations
    assert "(16 network evaluations" in capsys.readouterr().out
    assert main(base + ["--method", "heun", "--sample-steps", "2", "-o", str(tmp_path / "b.xyz")]) == 0
    assert "(8 network evaluations" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(base + ["--steps", "4", "-o", str(tmp_path / "c.xyz")])
    assert exc.value.code == 2 and "use --sample-steps 4" in capsys.readouterr().err
    assert not (tmp_path / "c.xyz").exists()


def test_train_writes_a_model_that_generate_reads(tmp_path, make_reaction, reaction, capsys):
    from sciflow.datasets.reactions import write_reactions

    data = tmp_path / "syn.extxyz"
    write_reactions(data, [make_reaction(s) for s in range(3)])
    run = tmp_path / "run"
    tiny = ["--hidden", "8", "--layers", "1", "--batch-size", "2", "--steps", "3"]
    assert main(["ts", "train", "--data", str(data), "--out", str(run), *tiny]) == 0
    assert "inference checkpoint" in capsys.readouterr().out
    r, p = _write_ends(tmp_path, make_reaction(7))
    assert main(["ts", "generate", "--reactant", str(r), "--product", str(p), "--checkpoint",
                 str(run / "ts_model.pt"), "-o", str(tmp_path / "ts.xyz")]) == 0
    assert main(["ts", "train", "--data", str(data), "--out", str(run), *tiny[:-2], "--steps", "5",
                 "--resume"]) == 0


def test_group_help_imports_no_torch():
    code = ("import sys\nfrom sciflow.cli import main\ntry:\n    main(['ts', 'generate', '--help'])\n"
            "except SystemExit:\n    pass\nprint('HEAVY', [m for m in ('torch', 'torch_geometric', "
            "'e3nn', 'rdkit', 'tblite', 'sella', 'ase') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out, out[-400:]


def test_every_listed_output_format_is_written_by_ase():
    from ase.io.formats import filetype, ioformats

    from sciflow.domains.transition_states.cli import MULTI_FRAME_SUFFIXES, STRUCTURE_SUFFIXES

    for suffix in STRUCTURE_SUFFIXES:
        assert ioformats[filetype("x" + suffix, read=False)].can_write, suffix
    for suffix in MULTI_FRAME_SUFFIXES:
        assert not ioformats[filetype("x" + suffix, read=False)].single, suffix


def test_ts_group_lists_its_commands_and_build_dataset_keeps_its_own_parser(capsys):
    with pytest.raises(SystemExit):
        main(["ts", "--help"])
    text = capsys.readouterr().out
    for command in ("generate", "train", "evaluate", "build-dataset"):
        assert command in text
    with pytest.raises(SystemExit) as exc:
        main(["transition-states", "build-dataset", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--tier" in text and "--finalize" in text
    with pytest.raises(SystemExit) as exc:
        main(["ts", "build-dataset", "--tier", "nope"])
    assert exc.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_train_flags_name_config_fields_and_default_to_them():
    import dataclasses

    from sciflow.domains.transition_states import Config
    from sciflow.domains.transition_states.cli import MODEL_FLAGS, TRAIN_FLAGS
    from sciflow.domains.transition_states.commands import _config

    fields = {f.name for f in dataclasses.fields(Config)}
    train_fields = {f.name for f in dataclasses.fields(Config().train)}
    assert {n for n, _, _ in MODEL_FLAGS} <= fields and {n for n, _, _ in TRAIN_FLAGS} <= train_fields
    from sciflow.cli import build_parser

    parser, _ = build_parser()
    args = parser.parse_args(["ts", "train", "--out", "x"])
    assert _config(args) == Config().replace(train={"out_dir": "x"})  # nothing restated
    args = parser.parse_args(["ts", "train", "--out", "x", "--hidden", "12", "--ema-decay", "0.9"])
    assert _config(args).hidden == 12 and _config(args).train.ema_decay == 0.9

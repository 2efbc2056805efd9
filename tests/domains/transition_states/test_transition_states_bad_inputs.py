"""Bad inputs to ``sciflow ts`` and the TS Python API: a typed error naming the culprit, exit
status 2 with the ``sciflow ...: error:`` prefix on the command line, nothing written, and every
input file byte-identical afterwards."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from sciflow.checkpoint import CheckpointError, save_checkpoint
from sciflow.cli import main
from sciflow.errors import InputError, ResourceError

TINY = ["--hidden", "8", "--layers", "1", "--batch-size", "2", "--steps", "2"]


def _heptane() -> Atoms:
    """n-heptane (23 atoms), far larger than the shipped model's training reactions (<= 12)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CCCCCCC"))
    AllChem.EmbedMolecule(mol, randomSeed=0)
    AllChem.MMFFOptimizeMolecule(mol)
    return Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()],
                 positions=mol.GetConformer().GetPositions())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, make_reaction) -> dict[str, Path]:
    from sciflow.datasets.reactions import write_reactions
    from sciflow.domains.transition_states import Config, TSVelocity, export_checkpoint, train

    d = tmp_path_factory.mktemp("ts_bad")
    f = {name: d / name for name in ("r.xyz", "p.xyz", "big_r.xyz", "big_p.xyz", "empty.xyz",
                                     "notes.txt", "data.extxyz", "nan.extxyz", "toy.pt", "bad.pt",
                                     "split.json", "other_split.json", "done.xyz", "run")}
    rxn = make_reaction(0)
    ase.io.write(f["r.xyz"], rxn.reactant)
    ase.io.write(f["p.xyz"], rxn.product)
    big = _heptane()
    moved = big.copy()
    moved.positions[-1] += [1.6, 0.6, 0.0]  # a hydrogen leaves its carbon (a bond edit)
    ase.io.write(f["big_r.xyz"], big)
    ase.io.write(f["big_p.xyz"], moved)
    f["empty.xyz"].write_text("")
    f["notes.txt"].write_text("not a folder\n")
    f["done.xyz"].write_text("an earlier result\n")
    write_reactions(f["data.extxyz"], [make_reaction(s) for s in range(3)])
    broken = make_reaction(4)
    broken.transition_state.positions[:] = np.nan
    write_reactions(f["nan.extxyz"], [broken])
    save_checkpoint(f["toy.pt"], torch.nn.Linear(2, 2), kind="toy", meta={"config": {}})
    tiny = Config(hidden=8, layers=1, vector_channels=2, num_rbf=4, time_dim=4)
    good = export_checkpoint(d / "good.pt", TSVelocity(tiny))
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)
    f["bad.pt"].write_bytes(bytes(raw))
    good.unlink()
    f["split.json"].write_text("{not json")
    f["other_split.json"].write_text(json.dumps({"train": ["x"], "val": [], "test": ["y"]}))
    train([make_reaction(s) for s in range(3)], tiny.replace(
        batch_size=2, train={"steps": 2, "checkpoint_every": 2, "progress": False,
                             "out_dir": f["run"]}))
    return f


def _state(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the inputs, and proof that nothing was added)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _gen(*extra: str) -> list[str]:
    return ["ts", "generate", "--reactant", "{r.xyz}", "--product", "{p.xyz}", *extra]


# (id, argv, what the error must say); exit status 2 for each
CLI_ROWS = [
    ("output-is-the-reactant", _gen("-o", "{r.xyz}"), "is the input"),
    ("output-is-the-checkpoint", _gen("--checkpoint", "{toy.pt}", "-o", "{toy.pt}"),
     "is the input"),
    ("unknown-format-before-any-work", _gen("--checkpoint", "{dir}/none.pt", "-o", "{dir}/x.unknownfmt"),
     "unknown output format .unknownfmt"),
    ("existing-output", _gen("-o", "{done.xyz}"), "--overwrite"),
    ("output-under-a-file", _gen("-o", "{notes.txt}/ts.xyz"), "is a file, not a folder"),
    ("samples-out-is-output", _gen("-o", "{dir}/a.xyz", "--samples-out", "{dir}/a.xyz"),
     "two different names"),
    ("samples-out-single-frame-format", _gen("-o", "{dir}/a.xyz", "--samples-out", "{dir}/s.gjf"),
     "unknown output format .gjf"),
    ("samples-zero", _gen("--samples", "0", "-o", "{dir}/a.xyz"), "--samples"),
    ("samples-negative", _gen("--samples", "-3", "-o", "{dir}/a.xyz"), "--samples"),
    ("samples-absurd", _gen("--samples", "1000000000", "-o", "{dir}/a.xyz"),
     "--samples: 1000000000 sample(s)"),
    ("sample-steps-zero", _gen("--sample-steps", "0", "-o", "{dir}/a.xyz"), "--sample-steps"),
    ("unknown-solver", _gen("--solver", "rk45", "-o", "{dir}/a.xyz"), "rk45"),
    ("steps-is-training-only", _gen("--steps", "4", "-o", "{dir}/a.xyz"), "use --sample-steps 4"),
    ("fmax-zero", _gen("--fmax", "0", "-o", "{dir}/a.xyz"), "--fmax"),
    ("missing-reactant", ["ts", "generate", "--reactant", "{dir}/absent.xyz", "--product",
                          "{p.xyz}", "-o", "{dir}/a.xyz"], "reactant file"),
    ("empty-reactant", ["ts", "generate", "--reactant", "{empty.xyz}", "--product", "{p.xyz}",
                        "-o", "{dir}/a.xyz"], "could not read reactant file"),
    ("smiles-and-files", _gen("--reaction-smiles", "[H:1][H:2]>>[H:1][H:2]", "-o", "{dir}/a.xyz"),
     "not both"),
    ("foreign-checkpoint", _gen("--checkpoint", "{toy.pt}", "-o", "{dir}/a.xyz"),
     "holds a toy checkpoint, not a TS generator"),
    ("corrupted-checkpoint", _gen("--checkpoint", "{bad.pt}", "-o", "{dir}/a.xyz"), "bad.pt"),
    ("train-zero-steps", ["ts", "train", "--data", "{data.extxyz}", "--out", "{dir}/t0",
                          "--steps", "0"], "--steps"),
    ("train-existing-run", ["ts", "train", "--data", "{data.extxyz}", "--out", "{run}", *TINY],
     "holds checkpoints of another run; pass --resume"),
    ("train-resume-other-size", ["ts", "train", "--data", "{data.extxyz}", "--out", "{run}",
                                 "--resume", *TINY[:1], "16", *TINY[2:]],
     "another network: hidden=8 -> 16"),
    ("train-missing-data", ["ts", "train", "--data", "{dir}/absent", "--out", "{dir}/t1", *TINY],
     "absent"),
    ("train-all-nan-reaction", ["ts", "train", "--data", "{nan.extxyz}", "--out", "{dir}/t2",
                                *TINY], "transition state has non-finite"),
    ("train-absurd-batch", ["ts", "train", "--data", "{data.extxyz}", "--out", "{dir}/t3",
                            *TINY[:4], "--batch-size", "100000000000", "--steps", "2"],
     "--batch-size"),
    ("train-absurd-network", ["ts", "train", "--data", "{data.extxyz}", "--out", "{dir}/t4",
                              "--hidden", "1000000", "--steps", "2"], "--hidden/--layers"),
    ("train-split-not-json", ["ts", "train", "--data", "{data.extxyz}", "--split",
                              "{split.json}", "--out", "{dir}/t5", *TINY], "is not a split JSON"),
    ("evaluate-output-is-data", ["ts", "evaluate", "--data", "{data.extxyz}", "--no-energies",
                                 "-o", "{data.extxyz}"], "is the input"),
    ("evaluate-output-format", ["ts", "evaluate", "--data", "{data.extxyz}", "--no-energies",
                                "-o", "{dir}/scores.csv"], "unknown output format .csv"),
    ("evaluate-split-without-subset", ["ts", "evaluate", "--data", "{data.extxyz}",
                                       "--split", "{other_split.json}", "--no-energies"],
     "(test) names 1 reaction(s), none of them in the data"),
]


@pytest.mark.parametrize("argv, message", [row[1:] for row in CLI_ROWS],
                         ids=[row[0] for row in CLI_ROWS])
def test_cli_refuses_bad_input(files, capsys, argv, message):
    folder = files["r.xyz"].parent
    fill = {name: str(path) for name, path in files.items()} | {"dir": str(folder)}
    argv = [re.sub(r"\{([^}]+)\}", lambda m: fill[m.group(1)], a) for a in argv]
    before = _state(folder)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: invalid flag values
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sciflow ") and ": error:" in last and "Traceback" not in err, err
    assert message in last, last
    assert _state(folder) == before  # inputs byte-identical, nothing written


@functools.lru_cache(maxsize=1)
def _shipped() -> Any:
    from sciflow.domains.transition_states import load

    return load()


def _api_rows() -> list[tuple[str, Callable[[dict[str, Path]], Any], type, str]]:
    from sciflow.domains.transition_states import (
        Config,
        check_endpoints,
        evaluate,
        load,
        read_endpoint,
        refine,
        sample,
        train,
    )

    def ends(f: dict[str, Path]) -> tuple[Atoms, Atoms]:
        return read_endpoint(f["r.xyz"], "reactant"), read_endpoint(f["p.xyz"], "product")

    one = Atoms("C", positions=[[0, 0, 0]])
    return [
        ("sample-zero", lambda f: sample(_shipped(), *ends(f), samples=0), InputError, "samples=0"),
        ("sample-bool", lambda f: sample(_shipped(), *ends(f), samples=True), InputError,
         "samples=True"),
        ("sample-steps-negative", lambda f: sample(_shipped(), *ends(f), sample_steps=-1),
         InputError, "sample_steps=-1"),
        ("sample-solver", lambda f: sample(_shipped(), *ends(f), solver="rk45"), InputError,
         "solver='rk45'"),
        ("sample-fmax-without-calculator", lambda f: sample(_shipped(), *ends(f), rank="fmax"),
         InputError, "needs a calculator"),
        ("sample-unknown-rank", lambda f: sample(_shipped(), *ends(f), rank="energy"), InputError,
         "rank='energy'"),
        ("sample-absurd", lambda f: sample(_shipped(), *ends(f), samples=10**9), ResourceError,
         "would need about"),
        ("config-hidden", lambda f: Config(hidden=0), InputError, "hidden=0"),
        ("config-network", lambda f: Config(network="gcn"), InputError, "network='gcn'"),
        ("load-foreign", lambda f: load(f["toy.pt"]), CheckpointError, "toy"),
        ("load-corrupted", lambda f: load(f["bad.pt"]), CheckpointError, "corrupted"),
        ("train-nothing", lambda f: train([], Config()), InputError, "no reactions"),
        ("evaluate-nothing", lambda f: evaluate(_shipped(), []), InputError, "no reactions"),
        ("one-atom", lambda f: check_endpoints(one, one.copy()), InputError, "at least 2 atoms"),
        ("refine-nan", lambda f: refine(Atoms("CH", positions=[[0, 0, 0], [np.nan, 0, 0]]),
                                        compare_idpp=False), InputError, "non-finite"),
    ]


API_ROWS = _api_rows()


@pytest.mark.parametrize("call, error, message", [row[1:] for row in API_ROWS],
                         ids=[row[0] for row in API_ROWS])
def test_api_refuses_bad_input(files, call, error, message):
    folder = files["r.xyz"].parent
    before = _state(folder)
    with pytest.raises(error) as info:
        call(files)
    assert message in str(info.value)
    assert _state(folder) == before


def test_shipped_model_stays_finite_far_above_its_training_sizes(files):
    """The shipped model (mean aggregation since 2026-12-02; the previous sum-aggregated one
    diverged here) gives a finite TS for 23-atom heptane, with a warning that it is larger than
    anything it was trained on (3-17 atoms). NonFiniteError itself: test_ts_sampling."""
    from sciflow.domains.transition_states import OutOfScopeWarning, read_endpoint, sample

    with pytest.warns(OutOfScopeWarning, match="23 atoms"):
        ts = sample(_shipped(), read_endpoint(files["big_r.xyz"], "r"),
                    read_endpoint(files["big_p.xyz"], "p")).best
    assert ts.get_positions().shape == (23, 3) and np.isfinite(ts.get_positions()).all()

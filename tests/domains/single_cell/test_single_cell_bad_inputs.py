"""Bad inputs to ``sciflow cells`` and the single-cell API: each row is refused with a typed error
(or exit status 2 and ``sciflow cells...: error:``) whose message names the culprit, before any
output is touched, and every input file is byte-identical afterwards."""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from sciflow.checkpoint import CheckpointError, save_checkpoint
from sciflow.cli import main
from sciflow.domains.single_cell import (
    CellDataError,
    Config,
    PopulationPair,
    evaluate,
    load,
    read_populations,
    sample,
    score,
    train,
)
from sciflow.errors import InputError, NonFiniteError, ResourceError

SMALL = ["--hidden", "8", "--layers", "1", "--knn", "3", "--gnn-hidden", "4", "--gnn-layers", "1",
         "--cells-per-population", "8", "--populations-per-batch", "2"]


def _h5ad(path: Path, *, cells: int = 12, nan: bool = False, one_cell: bool = False) -> Path:
    rng = np.random.default_rng(0)
    rows, xs = [], []
    for p in range(3):
        n = 1 if one_cell and p == 0 else cells
        src = rng.normal(size=(n, 3))
        xs += [src, src + 1.0]
        for role in ("source", "target"):
            rows += [{"pop": f"p{p}", "role": role, "drug": "ctrl" if role == "source" else "d1"}
                     ] * n
    x = np.concatenate(xs).astype(np.float32)
    if nan:
        x[:] = np.nan
    obs = pd.DataFrame(rows)
    obs.index = obs.index.astype(str)
    anndata.AnnData(X=x, obs=obs).write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    d = tmp_path_factory.mktemp("cells_bad")
    data = _h5ad(d / "cells.h5ad")
    run = d / "run"
    assert main(["cells", "train", "--data", str(data), "--population-key", "pop",
                 "--condition-key", "drug", "--model-type", "mfm", "--steps", "2", *SMALL,
                 "--out", str(run)]) == 0
    ckpt = run / "model.pt"
    model = load(ckpt)
    foreign = save_checkpoint(d / "toy.pt", torch.nn.Linear(2, 2), kind="toy")
    raw = bytearray(ckpt.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(b ^ 0xFF for b in raw[middle:middle + 64])
    corrupted = d / "corrupted.pt"
    corrupted.write_bytes(bytes(raw))
    existing = d / "existing.h5ad"
    existing.write_bytes(b"an earlier result")
    (d / "taken.png").write_bytes(b"an earlier figure")
    text = d / "notes.h5ad"
    text.write_text("not an AnnData file")
    cells = read_populations(data, population_key="pop", condition_key="drug")
    return SimpleNamespace(dir=d, data=data, run=run, ckpt=ckpt, model=model, cells=cells,
                           foreign=foreign, corrupted=corrupted, existing=existing, text=text,
                           nan=_h5ad(d / "nan.h5ad", nan=True),
                           one=_h5ad(d / "one.h5ad", one_cell=True))


# argv builders; ``out`` is a name in the work folder or a path of its own, and flags in
# ``extra`` come last, so they override the defaults before them (argparse keeps the last)
def _train(w: SimpleNamespace, *extra: str, data: Path | None = None, out: str | Path = "new",
           population_key: str = "pop") -> list:
    return ["cells", "train", "--data", str(data or w.data), "--population-key", population_key,
            "--steps", "1", *SMALL, "--out", str(w.dir / out), *extra]


def _predict(w: SimpleNamespace, *extra: str, ckpt: Path | None = None,
             out: str | Path = "p.h5ad") -> list:
    return ["cells", "predict", "--checkpoint", str(ckpt or w.ckpt), "--data", str(w.data),
            "-o", str(w.dir / out), *extra]


def _evaluate(w: SimpleNamespace, *extra: str) -> list:
    return ["cells", "evaluate", "--checkpoint", str(w.ckpt), "--data", str(w.data), *extra]


def _nan_model(w: SimpleNamespace) -> object:
    net = copy.deepcopy(w.model.net)
    with torch.no_grad():
        net.velocity.output.bias.fill_(float("inf"))
    return replace(w.model, net=net)


# (id, what: argv builder or API call, expected: exit 2 or an exception type, message pattern)
ROWS = [
    ("predict-output-is-the-data", lambda w: _predict(w, out=w.data), 2,
     r"is the input .*cells\.h5ad"),
    ("predict-output-is-the-checkpoint", lambda w: _predict(w, out=w.ckpt), 2,
     r"is the input .*model\.pt"),
    ("predict-output-exists", lambda w: _predict(w, out=w.existing), 2,
     r"existing\.h5ad.*--overwrite"),
    ("predict-unknown-format", lambda w: _predict(w, out="p.csv"), 2,
     r"unknown output format \.csv"),
    ("predict-output-under-a-file", lambda w: _predict(w, out="notes.h5ad/p.h5ad"), 2,
     r"notes\.h5ad.* is a file, not a folder"),
    ("predict-zero-sample-steps", lambda w: _predict(w, "--sample-steps", "0"), 2,
     r"--sample-steps: expected an integer >= 1"),
    ("predict-unknown-solver", lambda w: _predict(w, "--solver", "rk45"), 2,
     r"--solver: invalid choice: 'rk45'"),
    ("predict-missing-checkpoint", lambda w: _predict(w, ckpt=w.dir / "none.pt"), 2,
     r"--checkpoint .*none\.pt' does not exist"),
    ("predict-foreign-checkpoint", lambda w: _predict(w, ckpt=w.foreign), 2,
     r"toy\.pt' holds a toy checkpoint, not a single_cell one"),
    ("predict-corrupted-checkpoint", lambda w: _predict(w, ckpt=w.corrupted), 2,
     r"corrupted\.pt'? is corrupted|refusing to load .*corrupted\.pt"),
    ("predict-data-as-checkpoint", lambda w: _predict(w, ckpt=w.data), 2,
     r"refusing to load .*cells\.h5ad"),
    ("predict-unknown-condition", lambda w: _predict(w, "--conditions", "heat"), 2,
     r"--conditions \['heat'\] are unknown to this model"),
    ("predict-absent-device", lambda w: _predict(w, "--device", "cuda:7"), 2,
     r"--device='cuda:7'"),
    ("train-absent-device", lambda w: _train(w, "--device", "cuda:7"), 2, r"--device='cuda:7'"),
    ("train-zero-steps", lambda w: _train(w, "--steps", "0"), 2,
     r"--steps: expected an integer >= 1, got 0"),
    ("train-all-nan-data", lambda w: _train(w, data=w.nan), 2,
     r"population 'p0' has 12 source cell\(s\) with NaN"),
    ("train-one-cell-population", lambda w: _train(w, "--model-type", "fm", data=w.one), 2,
     r"population 'p0' has 1 source cell\(s\), fewer than the 2 cells"),
    ("train-population-below-knn", lambda w: _train(w, "--knn", "12", "--cells-per-population",
                                                     "16"), 2,
     r"population 'p0' has 12 source cell\(s\), fewer than the 13 cells this model needs"),
    ("train-batch-below-knn", lambda w: _train(w, "--knn", "10"), 2,
     r"cells_per_population=8: MFM .*knn \+ 1 = 11"),
    ("train-absurd-batch", lambda w: _train(w, "--model-type", "fm", "--cells-per-population",
                                            str(10**11)), 2,
     r"cells_per_population: a training batch of 2 populations x 100000000000 cells would need"),
    ("train-out-is-the-data", lambda w: _train(w, out="cells.h5ad"), 2,
     r"model\.pt' lies inside the input .*cells\.h5ad"),
    ("train-unknown-population-key", lambda w: _train(w, population_key="patient"), 2,
     r"population_key='patient' is not an obs column"),
    ("train-bad-where", lambda w: _train(w, "--where", "split"), 2,
     r"--where: expected KEY=VALUE"),
    ("train-missing-data", lambda w: _train(w, data=w.dir / "absent.h5ad"), 2,
     r"--data .*absent\.h5ad' does not exist"),
    ("train-not-anndata", lambda w: _train(w, data=w.text), 2,
     r"notes\.h5ad' is not a readable AnnData"),
    ("train-unknown-rep", lambda w: _train(w, "--rep", "X_umap"), 2,
     r"rep='X_umap' is not an obsm key"),
    ("train-existing-run-without-resume", lambda w: _train(w, "--condition-key", "drug",
                                                           out="run"), 2,
     r"--out .*run' already holds a training run; pass --resume"),
    ("train-resume-with-another-size",
     lambda w: _train(w, "--condition-key", "drug", "--resume", "--hidden", "16", out="run"), 2,
     r"cannot resume .*hidden: 8 there, 16 now"),
    ("evaluate-max-cells-one", lambda w: _evaluate(w, "--max-cells", "1"), 2,
     r"--max-cells: expected an integer >= 2"),
    ("evaluate-output-is-the-data", lambda w: _evaluate(w, "-o", str(w.data)), 2,
     r"is the input .*cells\.h5ad"),
    ("evaluate-both-sources", lambda w: _evaluate(w, "--predictions", str(w.data)), 2,
     r"exactly one of --checkpoint"),
    ("train-control-not-a-level", lambda w: _train(w, "--condition-key", "drug", "--control",
                                                   "none"), 2,
     r"control='none' is not a value of obs\['drug'\]; its values are \['ctrl', 'd1'\]"),
    ("train-control-without-condition-key", lambda w: _train(w, "--control", "ctrl"), 2,
     r"control='ctrl' needs condition_key"),
    ("train-control-and-role-key", lambda w: _train(w, "--condition-key", "drug", "--control",
                                                    "ctrl", "--role-key", "role"), 2,
     r"pass either --control ctrl .* or --role-key role"),
    ("predict-one-spread-repeat", lambda w: _predict(w, "--spread-repeats", "1"), 2,
     r"--spread-repeats 1: the spread needs >= 2 redraws"),
    ("predict-plot-exists", lambda w: _predict(w, "--plot", out="taken.h5ad"), 2,
     r"taken\.png.*--overwrite"),
    ("evaluate-plot-without-output", lambda w: _evaluate(w, "--plot"), 2,
     r"--plot writes its figure next to -o"),
    ("api-evaluate-one-spread-repeat", lambda w: evaluate(w.model, w.cells, spread_repeats=1),
     InputError, r"spread_repeats=1"),
    ("api-sample-zero-steps", lambda w: sample(w.model, w.cells, solver="euler", steps=0),
     InputError, r"steps=0"),
    ("api-sample-unknown-solver", lambda w: sample(w.model, w.cells, solver="rk45"), InputError,
     r"solver='rk45'"),
    ("api-sample-zero-max-rows", lambda w: sample(w.model, w.cells, max_rows=0), InputError,
     r"max_rows=0"),
    ("api-sample-wrong-features",
     lambda w: sample(w.model, [PopulationPair(population="q", condition="d1",
                                               source=torch.randn(10, 2), target=None)]),
     CellDataError, r"population 'q\|d1' has cells with 2 features .* trained on 3"),
    ("api-sample-population-below-knn",
     lambda w: sample(w.model, [PopulationPair(population="tiny", condition="d1",
                                               source=torch.randn(3, 3), target=None)]),
     CellDataError, r"population 'tiny\|d1' has 3 source cell\(s\), fewer than the 4"),
    ("api-sample-non-finite-flow", lambda w: sample(_nan_model(w), w.cells, solver="euler",
                                                    steps=2),
     NonFiniteError, r"population 'p0\|d1'.*NaN or inf"),
    ("api-train-one-cell", lambda w: train(read_populations(w.one, population_key="pop"),
                                           Config(model_type="fm").replace(train={"steps": 1})),
     CellDataError, r"population 'p0' has 1 source cell\(s\)"),
    ("api-train-absurd-batch",
     lambda w: train(w.cells, Config(model_type="fm", cells_per_population=10**11)),
     ResourceError, r"cells_per_population"),
    ("api-config-zero-hidden", lambda w: Config(hidden=0), InputError, r"hidden=0"),
    ("api-config-unknown-type", lambda w: Config(model_type="gfm"), InputError,
     r"model_type='gfm'"),
    ("api-score-max-cells-one", lambda w: score([p.source for p in w.cells.pairs], w.cells,
                                                max_cells=1), InputError, r"max_cells=1"),
    ("api-evaluate-unknown-baseline", lambda w: evaluate(w.model, w.cells,
                                                         baselines=("oracle",)),
     InputError, r"baselines=\['oracle'\]"),
    ("api-load-foreign", lambda w: load(w.foreign), CheckpointError,
     r"toy\.pt' holds a toy checkpoint"),
    ("api-load-absent-device", lambda w: load(w.ckpt, device="cuda:7"), InputError,
     r"--device='cuda:7'"),
]


def _digests(w: SimpleNamespace) -> dict[Path, str]:
    files = [p for p in w.dir.rglob("*") if p.is_file() and not p.name.startswith(".sciflow")]
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_refused_and_inputs_are_untouched(row, w, capsys) -> None:
    name, call, expected, pattern = row
    if name.endswith("absent-device") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    before = _digests(w)
    if expected == 2:
        try:
            code = main(call(w))
        except SystemExit as exc:  # argparse's own refusal
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, err
        assert re.search(r"sciflow (cells|single-cell)( [a-z]+)?: error:", err), err
        assert "Traceback" not in err
        assert re.search(pattern, err, re.S), err
    else:
        with pytest.raises(expected, match=pattern):
            call(w)
    assert _digests(w) == before
    for out in ("new/model.pt", "p.h5ad", "p.csv", "p.png", "taken.h5ad"):
        assert not (w.dir / out).exists(), out


def test_there_are_enough_rows() -> None:
    assert len(ROWS) >= 18 and len({r[0] for r in ROWS}) == len(ROWS)
    assert sum(r[2] == 2 for r in ROWS) >= 18

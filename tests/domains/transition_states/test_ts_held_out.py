"""`ts evaluate` scores held-out reactions unless told otherwise, says which set it scored,
warns when the model is no better than (R+P)/2, and reads Transition1x as published."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from sciflow.cli import main
from sciflow.domains.transition_states import (
    BaselineWarning,
    Model,
    TSInputError,
    TSVelocity,
    evaluate,
    held_out,
)


def test_default_is_the_recorded_test_part_not_the_training_reactions(tmp_path, shipped,
                                                                      shipped_test, capsys):
    from sciflow.datasets.reactions import write_reactions
    from sciflow.domains.transition_states.files import (
        select_reactions,
        shipped_data,
        snapshot_reactions,
    )

    split = shipped.meta["splits"]["random"]
    seen = select_reactions(snapshot_reactions(shipped_data()), split["train"][:3])
    data = tmp_path / "mixed.extxyz"
    write_reactions(data, seen + shipped_test[:2])
    base = ["ts", "evaluate", "--data", str(data), "--no-energies", "--sample-steps", "1"]
    assert main(base + ["-o", str(tmp_path / "a.json")]) == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    assert sorted(r["id"] for r in doc["rows"]) == sorted(r.id for r in shipped_test[:2])
    assert "scoring the 2 reactions of the checkpoint's recorded random split's test part" in \
        capsys.readouterr().out
    assert main(base + ["--subset", "all", "-o", str(tmp_path / "b.json")]) == 0
    assert len(json.loads((tmp_path / "b.json").read_text())["rows"]) == 5
    assert "training reactions included" in capsys.readouterr().out
    assert main(base + ["--subset", "train"]) == 0
    assert "scoring the 3 reactions" in capsys.readouterr().out


def test_held_out_needs_a_record_and_finds_unseen_reactions(make_reaction):
    rs = [make_reaction(s) for s in range(4)]
    with pytest.raises(TSInputError, match="records no split and no training ids.*--subset all"):
        held_out({}, rs, "test")
    chosen, text = held_out({"train": {"ids": ["syn0", "syn1"]}}, rs, "test")
    assert [r.id for r in chosen] == ["syn2", "syn3"] and "never seen in training" in text
    chosen, _ = held_out({"splits": {"s": {"train": ["syn0"], "val": ["syn1"], "test": ["syn2"]}}},
                         rs, "unseen")
    assert [r.id for r in chosen] == ["syn2", "syn3"]


def test_no_better_than_the_midpoint_warns_in_python_and_on_the_command_line(tiny, make_reaction):
    data = [make_reaction(s, ts_at_midpoint=True) for s in range(3)]
    model = Model(TSVelocity(tiny), meta={"default_steps": 2})
    with pytest.warns(BaselineWarning, match=r"no closer to the references than the \(R\+P\)/2"):
        ev = evaluate(model, data, time_single=False)
    assert ev.warnings and "midpoint" in ev.warnings[0]
    assert np.isfinite(ev.summary.uncertainty_spearman) or len(data) < 3


def _t1x_writer():
    path = Path(__file__).parents[2] / "datasets" / "test_transition1x.py"
    spec = importlib.util.spec_from_file_location("_t1x_published_writer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_transition1x_train_and_evaluate_in_one_command_each(tmp_path, capsys):
    t1x = _t1x_writer()
    path = tmp_path / "Transition1x.h5"
    t1x.write_published(path, np.random.default_rng(0))
    run = tmp_path / "run"
    tiny = ["--hidden", "8", "--layers", "1", "--batch-size", "2", "--steps", "3"]
    assert main(["ts", "train", "--transition1x", str(path), "--out", str(run), *tiny]) == 0
    captured = capsys.readouterr()
    assert "training on 3 reactions of Transition1x's official train split" in captured.err
    assert "wB97x/6-31G(d)" in captured.out
    model = run / "ts_model.pt"
    base = ["ts", "evaluate", "--transition1x", str(path), "--checkpoint", str(model),
            "--no-energies", "--sample-steps", "1"]
    assert main(base + ["-o", str(tmp_path / "t.json")]) == 0
    assert "the 1 reactions of Transition1x's official test split" in capsys.readouterr().out
    assert [r["id"] for r in json.loads((tmp_path / "t.json").read_text())["rows"]] == \
        ["CH2O2/rxn0005"]
    ids = tmp_path / "react_ot_test.txt"
    ids.write_text("# React-OT style\nrxn0004\nCH2O2/rxn0005\n")
    assert main(base + ["--ids", str(ids)]) == 0
    assert "the 2 reactions listed in --ids" in capsys.readouterr().out
    train_ids = tmp_path / "train.txt"
    train_ids.write_text("C2H4O/rxn0001\nrxn0004\n")
    assert main(["ts", "train", "--transition1x", str(path), "--ids", str(train_ids), "--out",
                 str(tmp_path / "run2"), *tiny]) == 0
    assert "training on 2 reactions" in capsys.readouterr().err
    # the --ids model records its training ids: evaluating on them warns that they were seen
    assert main(base[:5] + [str(tmp_path / "run2" / "ts_model.pt")] + base[6:]
                + ["--ids", str(train_ids)]) == 0
    assert "are in the checkpoint's training or validation data" in capsys.readouterr().err


def test_an_empty_transition1x_selection_is_a_clear_error(tmp_path, capsys):
    import h5py

    t1x = _t1x_writer()
    path = tmp_path / "t1x.h5"
    t1x.write_published(path, np.random.default_rng(1))
    with h5py.File(path, "a") as fh:
        del fh["test"]
    assert main(["ts", "evaluate", "--transition1x", str(path), "--no-energies"]) == 2
    assert "no reaction in split(s) ['test']" in capsys.readouterr().err

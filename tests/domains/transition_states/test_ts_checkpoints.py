"""Checkpoints: the shipped file is current (kind + digest); old files, foreign and damaged ones."""

import json

import pytest
import torch

from sciflow.checkpoint import CheckpointError, atomic_write, read_state, save_checkpoint
from sciflow.domains.transition_states import (
    DEFAULT_CHECKPOINT,
    KIND,
    Model,
    TSVelocity,
    export_checkpoint,
    load,
)


def test_shipped_checkpoint_is_tagged_and_digested():
    assert DEFAULT_CHECKPOINT.is_file() and DEFAULT_CHECKPOINT.stat().st_size < 5e6
    state = read_state(DEFAULT_CHECKPOINT)  # raises if the digest does not match
    assert state["format"] == "sciflow.train/2" and state["kind"] == KIND
    meta = json.loads(state["meta_json"])
    assert meta["config"]["network"] == "egnn" and meta["train"]["max_atoms"] >= 2


def test_a_file_of_the_former_layout_loads_with_its_settings(tmp_path, tiny):
    tiny = tiny.replace(pair_distances=False)
    net = TSVelocity(tiny)
    legacy_meta = {"kind": "sciflow.transition_states/1", "default_steps": 3,
                   "default_method": "midpoint",
                   "model": {k: v for k, v in tiny.network_dict().items() if k != "pair_distances"},
                   "train": {"steps": 40, "batch_size": 4, "lr": 3e-3, "ema_decay": 0.99,
                             "reverse": True, "distance_weight": 0.5, "reactions": 9}}
    old = tmp_path / "old.pt"
    atomic_write(old, lambda f: torch.save({"format": "sciflow.train/1", "step": 40,
                                            "model": net.state_dict(), "config_json": "null",
                                            "meta_json": json.dumps(legacy_meta)}, f))
    with pytest.warns(UserWarning, match="without a digest"):
        model = load(old)
    # written before pair distances existed: the option is off, as the old loader read it
    assert not model.config.pair_distances and model.config.hidden == tiny.hidden
    assert model.config.train.steps == 40 and model.config.batch_size == 4
    assert model.default_steps == 3 and model.default_solver == "midpoint"
    for a, b in zip(model.net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)


def test_foreign_missing_and_damaged_files_are_named(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="TS checkpoint .*absent.pt' does not exist"):
        load(tmp_path / "absent.pt")
    other = save_checkpoint(tmp_path / "other.pt", torch.nn.Linear(2, 2), kind="toy",
                            meta={"config": {}})
    with pytest.raises(CheckpointError, match="holds a toy checkpoint, not a TS generator"):
        load(other)
    good = export_checkpoint(tmp_path / "good.pt", TSVelocity(tiny), step=2)
    assert isinstance(load(good), Model)
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # inside the weights
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="bad.pt"):
        load(bad)

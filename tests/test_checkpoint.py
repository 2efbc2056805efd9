"""Checkpoint integrity: digests catch flipped bytes, kinds are checked, legacy files still load,
and no module loads a torch file except through sciflow.checkpoint."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from sciflow.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    digest,
    load_checkpoint,
    load_tensors,
    read_state,
    save_checkpoint,
    save_tensors,
    upgrade_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 4))


def _tensor_offset(raw: bytes, values: torch.Tensor) -> int:
    needle = values.detach().contiguous().view(torch.uint8).numpy().tobytes()[:64]
    at = raw.find(needle)
    assert at >= 0, "the tensor's bytes must be stored verbatim in the file"
    return at


def test_flipped_bytes_inside_a_tensor_are_refused(tmp_path: Path) -> None:
    net = _net()
    path = save_checkpoint(tmp_path / "m.pt", net, kind="toy")
    load_checkpoint(path, _net(), kind="toy")  # intact: loads
    raw = bytearray(path.read_bytes())
    at = _tensor_offset(bytes(raw), net[0].weight)
    for i in range(at, at + 64):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    # the file still unpickles (only tensor bytes changed), so only the digest can tell
    assert torch.load(path, weights_only=True)["format"] == CHECKPOINT_FORMAT
    with pytest.raises(CheckpointError, match=r"m\.pt.*corrupted"):
        load_checkpoint(path, _net())


def test_digest_covers_every_entry() -> None:
    base = {"step": 3, "model": {"w": torch.ones(3)}, "meta_json": "{}"}
    d = digest(base)
    assert digest({**base, "step": 4}) != d
    assert digest({**base, "model": {"w": torch.ones(3, dtype=torch.float64)}}) != d
    assert digest({**base, "model": {"w": torch.ones(1, 3)}}) != d
    assert digest({**base, "meta_json": '{"a": 1}'}) != d
    assert digest({**base, "digest": "anything"}) == d  # the digest does not cover itself


def test_kind_is_checked_and_named(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", _net(), kind="single_cell")
    assert load_checkpoint(path).kind == "single_cell"
    with pytest.raises(CheckpointError, match="single_cell.*transition_states"):
        load_checkpoint(path, kind="transition_states")


def test_wrong_model_size_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", _net())
    other = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(path, other)


def test_legacy_file_loads_with_a_warning_and_upgrades(tmp_path: Path) -> None:
    net = _net()
    legacy = tmp_path / "old.pt"
    torch.save({"format": "sciflow.train/1", "step": 0, "model": net.state_dict(),
                "config_json": "null", "meta_json": '{"kind": "toy"}'}, legacy)
    with pytest.warns(UserWarning, match="without a digest"):
        ck = load_checkpoint(legacy, _net(), kind="toy")
    assert ck.digest is None and ck.kind == "toy"
    upgrade_checkpoint(legacy, kind="toy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ck = load_checkpoint(legacy, _net(), kind="toy")
    assert ck.digest is not None
    assert all(torch.equal(ck.state_dict[k], v) for k, v in net.state_dict().items())


def test_tensor_cache_round_trip_and_refusals(tmp_path: Path) -> None:
    path = save_tensors(tmp_path / "c.pt", {"x": torch.arange(5.0), "note": "hi"}, kind="cache/x")
    got = load_tensors(path, kind="cache/x")
    assert torch.equal(got["x"], torch.arange(5.0)) and got["note"] == "hi"
    with pytest.raises(CheckpointError, match="not a 'cache/y' cache"):
        load_tensors(path, kind="cache/y")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    torch.save({"format": CHECKPOINT_FORMAT, "kind": "cache/x", "tensors": Evil()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_tensors(path, kind="cache/x")
    assert not marker.exists()


def test_read_state_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_state(tmp_path / "nope.pt")


def test_no_torch_load_outside_the_safe_loader() -> None:
    """Every torch.load in the tree goes through sciflow.checkpoint (weights only, digest)."""
    pattern = re.compile(r"\btorch\.load\(")
    offenders = []
    for folder in ("sciflow", "domains", "datasets", "benchmarks", "examples", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "sciflow" / "checkpoint.py" or path == Path(__file__).resolve():
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line.split("#", 1)[0]):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert not offenders, f"torch.load outside sciflow/checkpoint.py: {offenders}"


def test_a_killed_save_leaves_no_checkpoint_and_its_temporary_is_swept(tmp_path: Path) -> None:
    """kill -9 in the middle of writing: the old file stays, the next start sweeps the temp."""
    script = (
        "import os, torch\n"
        "from sciflow.checkpoint import atomic_write\n"
        "def w(f):\n"
        "    f.write(b'x' * 1000); f.flush(); os.kill(os.getpid(), 9)\n"
        f"atomic_write({str(tmp_path / 'step_00000001.pt')!r}, w)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert "step_00000001.pt" not in leftovers and len(leftovers) == 1
    from sciflow.outputs import sweep_stale

    sweep_stale(tmp_path)
    assert list(tmp_path.iterdir()) == []

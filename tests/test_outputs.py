"""The one output path: checked before work, never an input, never a silent replacement, atomic."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sciflow.errors import InputError, NonFiniteError, OutputError
from sciflow.outputs import LOCK_PREFIX, claim_output, dumps_json, ensure_finite, sweep_stale


def _write_text(text: str):
    return lambda tmp: Path(tmp).write_text(text)


def test_writes_a_new_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "a.xyz"
    with claim_output(out, suffixes=(".xyz",)) as claim:
        assert (out.parent / f"{LOCK_PREFIX}a.xyz").exists()  # claimed before any work
        seen = []
        claim.write(lambda tmp: (seen.append(Path(tmp).name), Path(tmp).write_text("ok")))
    assert out.read_text() == "ok"
    assert seen[0].endswith("a.xyz") and seen[0].startswith(".")  # same suffix, hidden
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.xyz"]


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink", "inside-store",
                                 "holds-input"])
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, how: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "in.h5ad"
    data.write_bytes(b"precious")
    store = tmp_path / "cube.zarr"
    store.mkdir()
    (store / "band").write_bytes(b"bands")
    monkeypatch.chdir(tmp_path)
    inputs = [data, store]
    out = {"same": data, "relative": Path("in.h5ad"), "symlink": tmp_path / "link.h5ad",
           "hardlink": tmp_path / "hard.h5ad", "inside-store": store / "x.nc",
           "holds-input": tmp_path}[how]
    if how == "symlink":
        out.symlink_to(data)
    if how == "hardlink":
        os.link(data, out)
    with pytest.raises(OutputError, match="input"):
        claim_output(out, inputs=inputs, overwrite=True)
    assert data.read_bytes() == b"precious" and (store / "band").read_bytes() == b"bands"


def test_an_unwritten_claim_leaves_no_folder_behind(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="work failed"), \
            claim_output(tmp_path / "new" / "deeper" / "x.nc"):
        raise RuntimeError("work failed")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite_and_is_then_replaced(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("old")
    with pytest.raises(OutputError, match="--overwrite"):
        claim_output(out)
    assert out.read_text() == "old"
    with claim_output(out, overwrite=True) as claim:
        claim.write(_write_text("new"))
    assert out.read_text() == "new"


def test_unknown_format_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.unknownfmt.*\.xyz, \.extxyz"):
        claim_output(tmp_path / "x.unknownfmt", suffixes=(".xyz", ".extxyz"))


def test_unwritable_folder_is_refused_up_front(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/sciflow-out/x.nc")  # even root cannot create folders in /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "x.nc"
    with pytest.raises(OutputError, match="cannot write|not a folder"):
        claim_output(target)


def test_a_second_writer_is_refused_while_the_first_holds_the_claim(tmp_path: Path) -> None:
    out = tmp_path / "o.nc"
    script = ("import sys, time\nfrom sciflow.outputs import claim_output\n"
              f"c = claim_output({str(out)!r})\nprint('claimed', flush=True)\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "claimed"
        with pytest.raises(OutputError, match=f"another sciflow process \\(pid {proc.pid}\\)"):
            claim_output(out)
    finally:
        proc.kill()
        proc.wait()
    with claim_output(out) as claim:  # the dead writer's lock is taken over
        claim.write(_write_text("mine"))
    assert out.read_text() == "mine"


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "o.txt"
    claim = claim_output(out)
    out.write_text("someone else's")
    with pytest.raises(OutputError, match="appeared"):
        claim.write(_write_text("mine"))
    claim.release()
    assert out.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.txt"]


def test_a_failing_writer_keeps_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "o.txt"
    out.write_text("old")

    def broken(tmp: Path) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"), claim_output(out, overwrite=True) as c:
        c.write(broken)
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.txt"]


def test_directory_store_is_swapped_whole(tmp_path: Path) -> None:
    out = tmp_path / "cube.zarr"
    out.mkdir()
    (out / "old_band").write_text("old")

    def fill(tmp: Path) -> None:
        Path(tmp).mkdir()
        (Path(tmp) / "new_band").write_text("new")

    with claim_output(out, overwrite=True) as claim:
        claim.write(fill)
    assert sorted(p.name for p in out.iterdir()) == ["new_band"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.zarr"]


def test_sweep_removes_dead_temporaries_and_undoes_a_half_swap(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f".sciflow-tmp-{dead}-abcd-x.nc").write_text("partial")
    (tmp_path / f".sciflow-old-{dead}-abcd-cube.zarr").mkdir()
    (tmp_path / f".sciflow-tmp-{os.getpid()}-abcd-live.nc").write_text("mine, in progress")
    sweep_stale(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["cube.zarr", f".sciflow-tmp-{os.getpid()}-abcd-live.nc"])


def test_strict_json_has_no_bare_nan() -> None:
    text = dumps_json({"rmsd": float("nan"), "e": [1.0, float("inf")], "t": (1, 2),
                       "a": np.float32(0.5), "v": np.array([1.0, np.nan])})
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"rmsd": None, "e": [1.0, None], "t": [1, 2], "a": 0.5,
                                "v": [1.0, None]}


def test_ensure_finite_names_the_first_bad_sample() -> None:
    x = np.zeros((5, 3, 3))
    ensure_finite(x, "coordinates")
    x[3, 1, 2] = math.nan
    x[4] = math.inf
    with pytest.raises(NonFiniteError, match=r"2 of 5 samples.*first: sample 3.*try fewer"):
        ensure_finite(x, "coordinates", hint="try fewer steps")


def test_strict_json_makes_str_subclasses_plain() -> None:
    import torch

    out = json.loads(dumps_json({"torch": torch.__version__}))
    assert type(out["torch"]) is str
    from sciflow.outputs import strict_json

    assert type(strict_json(torch.__version__)) is str


def test_line_progress_never_repeats_its_last_line() -> None:
    import io

    from sciflow.progress import LineProgress

    stream = io.StringIO()
    bar = LineProgress(total=3, desc="x", every=0.0, stream=stream)
    for _ in range(3):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("[x] 3/3")


def test_line_progress_estimates_the_time_left_from_the_steps_after_the_first(monkeypatch) -> None:
    """A slow first step (imports, warm-up) does not inflate the estimate: 100 s for step 1, then
    1 s a step, 10 steps in all, leaves ~8 s after step 2 (the whole-run rate would say ~404 s)."""
    import io

    import sciflow.progress as progress_module

    clock = {"t": 0.0}
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock["t"])
    stream = io.StringIO()
    bar = progress_module.LineProgress(total=10, desc="x", every=0.0, stream=stream)
    clock["t"] = 100.0
    bar.update()
    assert "left" not in stream.getvalue().splitlines()[-1]
    clock["t"] = 101.0
    bar.update()
    assert stream.getvalue().splitlines()[-1] == "[x] 2/10 (20%) 101 s elapsed, ~8 s left"

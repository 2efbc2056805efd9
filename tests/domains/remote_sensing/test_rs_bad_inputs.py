"""Bad input to `sciflow rs` and the remote-sensing API: a typed error naming the culprit, exit
status 2 with `sciflow rs...: error:` from the command line, and every input byte-identical
afterwards (outputs that existed before included). One row per mistake; tiny cubes and model."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sciflow.checkpoint import CheckpointError, save_checkpoint
from sciflow.cli import main
from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes, save_cube
from sciflow.domains.remote_sensing import (
    Config,
    CubeInputError,
    apply_to_cube,
    check_steer,
    load,
    predict_series,
    sample,
    series_from_cube,
    train,
)
from sciflow.errors import InputError, ResourceError

TINY = Config(frames=4, tile=8, dim=16, depth=1, heads=2, pixel_head=4, batch_size=2)
DATA = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5)


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """A folder of inputs: cubes (.nc, .zarr, all-NaN, all-cloudy, 3 bands), a run with its
    model, a checkpoint of another domain, a corrupted copy, an existing output, a plain file."""
    d = tmp_path_factory.mktemp("rs_bad")
    cubes = generate_cubes(DATA, 2, seed=0)
    for i, c in enumerate(cubes):
        save_cube(c, d / f"cube{i}.nc")
    save_cube(cubes[0], d / "cube.zarr")
    nan = cubes[0].copy(deep=True)
    nan["reflectance"][:] = np.nan
    save_cube(nan, d / "nan.nc")
    cloudy = cubes[0].copy(deep=True)
    cloudy["cloud"][:] = True
    save_cube(cloudy, d / "cloudy.nc")
    save_cube(cubes[0].sel(band=["B02", "B03", "B04"]), d / "three_bands.nc")
    model = train(cubes, TINY.replace(train={"steps": 1, "progress": False,
                                             "out_dir": d / "run"}))
    model.save(d / "run" / "model.pt")
    save_checkpoint(d / "toy.pt", torch.nn.Linear(2, 2), kind="toy")
    raw = bytearray((d / "run" / "model.pt").read_bytes())
    weight = max(model.net.state_dict().values(), key=lambda v: v.numel())
    at = raw.find(weight.numpy().tobytes()[:64])
    assert at > 0
    raw[at:at + 64] = bytes(b ^ 0xFF for b in raw[at:at + 64])
    (d / "corrupted.pt").write_bytes(bytes(raw))
    save_cube(cubes[1], d / "existing.nc")  # an output from an earlier run
    save_cube(cubes[1], d / "generated" / "cube_0000.nc")
    (d / "plain.txt").write_text("not a folder\n")
    return d


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


M = ["--checkpoint", "{d}/run/model.pt", "--samples", "1", "--sample-steps", "1"]


def infer(command: str, *extra: str, i: str = "cube0.nc", o: str = "o.nc",
          checkpoint: str | None = None) -> list[str]:
    """argv of `rs fill` / `rs forecast` from {d}/i to {d}/o: the run's model with one one-step
    sample (or only ``--checkpoint {d}/checkpoint``), then ``extra`` (later flags win)."""
    model = M if checkpoint is None else ["--checkpoint", f"{{d}}/{checkpoint}"]
    return [command, *model, "-i", f"{{d}}/{i}", "-o", f"{{d}}/{o}", *extra]


def train_argv(*extra: str, out: str = "new") -> list[str]:
    """argv of `rs train` on {d}/cube0.nc into {d}/out, then ``extra``."""
    return ["train", "--data", "{d}/cube0.nc", "--out", f"{{d}}/{out}", *extra]


SMALL = ["--frames", "4", "--tile", "8"]

# (id, argv with {d} for the input folder, a regex the error message must match)
CLI_ROWS: list[tuple[str, list[str], str]] = [
    ("fill --sample-steps 0 onto an existing output",
     infer("fill", "--overwrite", "--sample-steps", "0", o="existing.nc"),
     r"--sample-steps: expected an integer >= 1, got 0"),
    ("fill --steps 0 (old name) onto an existing output",
     infer("fill", "--overwrite", "--steps", "0", o="existing.nc"),
     r"--steps: expected an integer >= 1, got 0"),
    ("fill --samples 0", infer("fill", "--samples", "0"), r"--samples: expected an integer >= 1"),
    ("fill a zarr output equal to the zarr input",
     infer("fill", "--overwrite", i="cube.zarr", o="cube.zarr"), r"cube\.zarr' is the input"),
    ("fill onto its own .nc input", infer("fill", o="cube0.nc"), r"cube0\.nc' is the input"),
    ("fill onto the checkpoint", infer("fill", o="run/model.pt"), r"model\.pt' is the input"),
    ("fill into a zarr store's inside", infer("fill", i="cube.zarr", o="cube.zarr/x.nc"),
     r"lies inside the input"),
    ("fill onto an existing output without --overwrite", infer("fill", o="existing.nc"),
     r"exists; pass --overwrite"),
    ("fill to an unknown format", infer("fill", o="o.tif"), r"unknown output format \.tif"),
    ("fill to a folder that cannot be made", infer("fill", o="plain.txt/o.nc"),
     r"plain\.txt' is a file"),
    ("fill an all-NaN reflectance cube", infer("fill", i="nan.nc"),
     r"nan\.nc.*'reflectance' holds no finite value"),
    ("reconstruct a cube that is cloudy everywhere", infer("fill", i="cloudy.nc"),
     r"cloudy\.nc.*no clear observation"),
    ("fill a cube that lacks a band of the model", infer("fill", i="three_bands.nc"),
     r"lacks band\(s\) \['B08'\]"),
    ("fill a missing input", infer("fill", i="none.nc"), r"--input '.*none\.nc' does not exist"),
    ("fill with a missing checkpoint", infer("fill", checkpoint="none.pt"),
     r"--checkpoint '.*none\.pt' does not exist"),
    ("fill with another domain's checkpoint", infer("fill", checkpoint="toy.pt"),
     r"toy\.pt' holds a toy checkpoint, not a remote_sensing one"),
    ("fill with a corrupted checkpoint", infer("fill", checkpoint="corrupted.pt"),
     r"corrupted\.pt' is corrupted"),
    ("fill with a cube as the checkpoint", infer("fill", checkpoint="cube1.nc"),
     r"refusing to load '.*cube1\.nc'"),
    ("fill a checkpoint given as the input", infer("fill", i="run/model.pt"),
     r"model\.pt.*\.nc \(netCDF\)"),
    ("fill --steer 1.5", infer("fill", "--steer", "1.5"), r"steer .*\(0, 1\)"),
    ("fill --steer with rk4", infer("fill", "--steer", "0.5", "--solver", "rk4"),
     r"--steer works with Euler steps"),
    ("fill with an overlap as large as the tile", infer("fill", "--overlap", "8"),
     r"overlap=8: expected an integer in \[0, 8\)"),
    ("fill on a device this machine lacks", infer("fill", "--device", "cuda:7"),
     r"--device='cuda:7'"),
    ("train on a device that does not exist", train_argv("--device", "tpu"), r"--device='tpu'"),
    ("fill an absurd ensemble", infer("fill", "--chunk", "0", "--samples", "1000000000"),
     r"samples: .* would need about"),
    ("forecast more dates than the model's window", infer("forecast", "--horizon", "4"),
     r"at most 3 dates"),
    ("forecast dates that are not dates", infer("forecast", "--dates", "2024-13-45"),
     r"--dates '2024-13-45'"),
    ("forecast a date in the past", infer("forecast", "--dates", "1990-01-01"),
     r"after the cube's last date"),
    ("forecast --every 0", infer("forecast", "--every", "0"),
     r"--every: expected an integer >= 1"),
    ("train --steps 0", train_argv("--steps", "0"), r"--steps: expected an integer >= 1"),
    ("train on a missing file", ["train", "--data", "{d}/none.nc", "--out", "{d}/new"],
     r"--data '.*none\.nc' does not exist"),
    ("train on a glob that matches nothing", ["train", "--data", "{d}/*.grib", "--out", "{d}/new"],
     r"matches no file"),
    ("train on an all-NaN cube", ["train", "--data", "{d}/nan.nc", "--out", "{d}/new", *SMALL],
     r"nan\.nc: 'reflectance' holds no finite value"),
    ("train into a run that exists, without --resume", train_argv(*SMALL, out="run"),
     r"--out='.*model\.pt': the file exists"),
    ("resume a run with another network size",
     ["train", "--data", "{d}/cube0.nc", "{d}/cube1.nc", "--out", "{d}/run", "--resume",
      "--steps", "2", *SMALL, "--dim", "32", "--depth", "1", "--heads", "2"],
     r"cannot resume .*dim=16 \(now 32\)"),
    ("train a tile that is no multiple of the patch", train_argv("--tile", "10"),
     r"tile=10: expected a multiple of patch_size=4"),
    ("train windows longer than the cubes", train_argv("--frames", "6", "--tile", "8"),
     r"4 dates but the model works on windows of 6 dates"),
    ("train an absurd batch", train_argv(*SMALL, "--batch-size", "100000000"),
     r"--batch-size / --tile: .* would need about"),
    ("train with an empty band list", train_argv("--bands", ","), r"--bands ','"),
    ("generate -n 0", ["generate", "-o", "{d}/gen", "-n", "0"], r"-n: expected an integer >= 1"),
    ("generate cubes too small", ["generate", "-o", "{d}/gen", "--size", "2"],
     r"size must be an integer >= 4"),
    ("generate with a cloud cover above 1",
     ["generate", "-o", "{d}/gen", "--cloud-cover", "1.5"], r"cloud_cover must lie in \[0, 1\)"),
    ("generate over existing cubes", ["generate", "-o", "{d}/generated", "-n", "2"],
     r"cube_0000\.nc': the file exists; pass --overwrite"),
]


@pytest.mark.parametrize("argv, culprit", [r[1:] for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS])
def test_cli_refuses(d: Path, argv: list[str], culprit: str, capsys: pytest.CaptureFixture) -> None:
    before = _digests(d)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(["rs", *(a.replace("{d}", str(d)) for a in argv)])
        except SystemExit as exc:  # argparse: a malformed flag
            code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(r"^sciflow (rs|remote-sensing)( [\w-]+)?: error: ", err, re.M), err
    assert re.search(culprit, err), err
    assert _digests(d) == before, "an input changed"
    assert not any(p.name.startswith(".sciflow-") for p in d.rglob("*")), "a temporary was left"


def _read(path: Path) -> Any:
    """A cube read into memory, its file closed again (no handle outlives the row)."""
    from sciflow.datasets.sentinel import load_cube

    with load_cube(path) as cube:
        return cube.load()


def _nan_cube(d: Path) -> Any:
    return _read(d / "nan.nc")


# (id, call(d, model), error type, regex on the message)
API_ROWS: list[tuple[str, Callable[[Path, Any], Any], type[Exception], str]] = [
    ("Config tile no multiple of the patch", lambda d, m: Config(tile=10), InputError,
     r"tile=10"),
    ("Config dim not divisible by heads", lambda d, m: Config(dim=20, heads=3), InputError,
     r"dim=20"),
    ("Config band names as one string", lambda d, m: Config(bands="B02"), InputError,
     r"bands='B02'"),
    ("Config task weights of the wrong length",
     lambda d, m: Config(task_weights=(1.0, 2.0)), InputError, r"task_weights"),
    ("an unknown task", lambda d, m: sample(m, _series(d), "denoise"), InputError,
     r"task='denoise'"),
    ("zero samples", lambda d, m: predict_series(m, _series(d), "reconstruction", samples=0),
     InputError, r"samples=0"),
    ("an unknown solver", lambda d, m: sample(m, _series(d), solver="rk45"), InputError,
     r"solver='rk45'"),
    ("an absurd ensemble",
     lambda d, m: predict_series(m, _series(d), "reconstruction", samples=10**9), ResourceError,
     r"samples: .* would need"),
    ("an all-NaN cube", lambda d, m: apply_to_cube(m, _nan_cube(d), "cloud_removal"),
     CubeInputError, r"'reflectance' holds no finite value"),
    ("a lazy all-NaN cube",
     lambda d, m: apply_to_cube(m, _nan_cube(d).chunk({"y": 4}), "reconstruction"),
     CubeInputError, r"'reflectance' holds no finite value"),
    ("a lazy cube with an unknown solver",
     lambda d, m: apply_to_cube(m, _clear(d).chunk({"y": 4}), "reconstruction", solver="ab2"),
     InputError, r"solver='ab2'"),
    ("forecasting without dates", lambda d, m: sample(m, _nan_cube(d), "forecasting"),
     InputError, r"forecast_dates"),
    ("a step size of 2", lambda d, m: check_steer(2.0), InputError, r"steer .*\(0, 1\)"),
    ("load another domain's file", lambda d, m: load(d / "toy.pt"), CheckpointError,
     r"toy checkpoint"),
    ("load a corrupted file", lambda d, m: load(d / "corrupted.pt"), CheckpointError,
     r"corrupted"),
    ("train on nothing", lambda d, m: train([], TINY), InputError, r"data"),
    ("train on all-NaN cubes", lambda d, m: train([_nan_cube(d)], TINY), CubeInputError,
     r"'reflectance' holds no finite value"),
    ("train with a window larger than the cubes",
     lambda d, m: train([_clear(d)], TINY.replace(frames=5)), CubeInputError, r"5 dates"),
    ("resume with another size",
     lambda d, m: train([_clear(d)], TINY.replace(dim=32, train={"out_dir": d / "run"}),
                        resume=True), InputError, r"dim=16 \(now 32\)"),
    ("resume without a run folder", lambda d, m: train([_clear(d)], TINY, resume=True),
     InputError, r"out_dir"),
]


def _clear(d: Path) -> Any:
    return _read(d / "cube0.nc")


def _series(d: Path) -> Any:
    return series_from_cube(_clear(d))


@pytest.fixture(scope="module")
def model(d: Path) -> Any:
    return load(d / "run" / "model.pt")


@pytest.mark.parametrize("call, kind, culprit", [r[1:] for r in API_ROWS],
                         ids=[r[0] for r in API_ROWS])
def test_api_refuses(d: Path, model: Any, call: Callable[[Path, Any], Any],
                     kind: type[Exception], culprit: str) -> None:
    before = _digests(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(kind, match=culprit):
            call(d, model)
    assert _digests(d) == before, "an input changed"


def test_a_failed_fill_leaves_the_existing_output_and_no_temporary(
        d: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The output is claimed before the work and written aside: an error in the middle of the
    work (here a flow that turns NaN) leaves the old output byte-identical."""
    import sciflow.domains.remote_sensing.sampling as sampling

    before = _digests(d)
    real = sampling.odeint

    def broken(*args: Any, **kw: Any) -> Any:
        sol = real(*args, **kw)
        return dataclasses.replace(sol, x=sol.x * float("nan"))

    monkeypatch.setattr(sampling, "odeint", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["rs", "fill", *(a.replace("{d}", str(d)) for a in M), "-i",
                     f"{d}/cube.zarr", "-o", f"{d}/existing.nc", "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "NaN or inf" in err and "nothing was written" in err, err
    assert _digests(d) == before
    assert not any(p.name.startswith(".sciflow-") for p in d.rglob("*"))

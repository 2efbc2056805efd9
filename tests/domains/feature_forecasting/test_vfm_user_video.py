"""A user's own video, end to end: `vfm train` / `vfm forecast` from .npy / .npz arrays in both
layouts (and an .mp4 where PyAV is installed), the frame size and clip rules, the provenance
beside every output (strict JSON, the checkpoint's digest, the input's sha256 and frame numbers),
the copy-last-frame warning, progress lines and the figure."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.checkpoint import load_checkpoint, load_tensors
from sciflow.datasets.sprites import SpriteConfig, make_sprite_clips
from sciflow.domains.feature_forecasting import (
    BaselineWarning,
    Config,
    VideoSource,
    build_extractor,
    evaluate,
    forecaster_schedule,
    train,
    video_clips,
    video_config,
)
from sciflow.domains.feature_forecasting.cli import FORECAST_KIND
from sciflow.errors import InputError

HAVE_AV = importlib.util.find_spec("av") is not None
SMALL = ("--compressor", "pca", "--latent-dim", "4", "--steps", "3", "--head-steps", "2",
         "--width", "16", "--heads", "2", "--depth", "1", "--context", "2", "--horizon", "2",
         "--samples", "2", "--sample-steps", "2", "--frame-size", "16")


def _strict(text: str) -> dict:
    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 40-frame moving-sprite video, 24 x 32 pixels, written as the files users have."""
    d = tmp_path_factory.mktemp("footage")
    clip = make_sprite_clips(1, 40, config=SpriteConfig(size=32), seed=7).frames[0]
    thwc = (clip.permute(0, 2, 3, 1).numpy()[:, 4:28] * 255).round().astype(np.uint8)
    np.save(d / "thwc.npy", thwc)
    np.save(d / "tchw_float.npy", (thwc.transpose(0, 3, 1, 2) / 255.0).astype(np.float32))
    np.savez(d / "clips.npz", frames=thwc.transpose(0, 3, 1, 2), labels=np.arange(40))
    np.save(d / "still.npy", np.repeat(thwc[:1], 12, axis=0))
    return {"thwc": d / "thwc.npy", "tchw": d / "tchw_float.npy", "npz": d / "clips.npz",
            "still": d / "still.npy", "dir": d}


def test_source_and_config_round_trip_and_refuse_nonsense(footage):
    src = VideoSource(path=str(footage["npz"]), key="frames", start=2, stop=30, every=2,
                      stride=3, fit="resize")
    assert VideoSource.from_dict(src.to_dict()) == src
    cfg = video_config(src, frame_size=16, patch_size=2, feature_patch=4)
    assert cfg.data == "video" and cfg.frame_shape == (16, 24)  # 24 x 32 frames: aspect kept
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert video_config(src, frame_size=16, frame_width=16).frame_shape == (16, 16)
    for call, fragment in [
        (lambda: VideoSource(path="clip.gif"), "unknown video format .gif"),
        (lambda: VideoSource(path="a.npy", layout="hwc"), "layout='hwc'"),
        (lambda: VideoSource(path="a.npy", fit="pad"), "fit='pad'"),
        (lambda: VideoSource(path="a.npy", start=4, stop=4), "stop=4"),
        (lambda: VideoSource(path="a.npy", stride=0), "stride=0"),
        (lambda: Config(data="video"), "data='video' goes with video="),
        (lambda: Config(video=src), "data='video' goes with video="),
        (lambda: Config(frame_width=40), "sprite frames are square"),
        (lambda: Config(data="video", video=src, frame_width=20), "frame_width=20"),
    ]:
        with pytest.raises(InputError) as info:
            call()
        assert fragment in str(info.value), fragment


def test_layout_and_value_constants_agree_with_the_reader():
    from sciflow.datasets import video as reader
    from sciflow.domains.feature_forecasting import video as domain

    assert domain.LAYOUTS == reader.LAYOUTS and domain.FITS == reader.FITS
    assert set(domain._SUFFIXES) == set(reader.ARRAY_SUFFIXES + reader.VIDEO_SUFFIXES)


def test_clips_of_a_file_and_their_provenance(footage):
    cfg = video_config(VideoSource(path=str(footage["thwc"])), frame_size=16, context=2,
                       horizon=2, compressor="pca", latent_dim=4)
    ext = build_extractor(cfg)
    src = VideoSource(path=str(footage["thwc"]), start=3, stop=30, every=2, stride=3)
    data = video_clips(src, cfg, ext)
    # frames 3, 5, ..., 29 (14 of them); clips of 4 start at kept frames 0, 3, 6, 9
    assert data.features.shape[:2] == (4, 4) and data.frames.shape == (4, 4, 3, 16, 24)
    p = data.provenance
    assert p["sha256"] == _sha(footage["thwc"]) and p["path"] == str(footage["thwc"].resolve())
    assert p["clip_starts"] == {"first": 3, "step": 6, "count": 4} and p["frames_read"] == 14
    assert (p["first_frame"], p["last_frame"], p["layout"], p["dtype"]) == (3, 29, "thwc",
                                                                             "uint8")
    # the same frames stored channels-first as floats give the same clips
    same = video_clips(VideoSource(path=str(footage["tchw"]), start=3, stop=30, every=2,
                                   stride=3), cfg, ext)
    assert torch.allclose(same.frames, data.frames, atol=1e-6)
    assert same.provenance["layout"] == "tchw" and same.provenance["dtype"] == "float32"
    assert video_clips(src, cfg, ext, clips=2).features.shape[0] == 2
    with pytest.raises(InputError, match=r"give 2 frames, fewer than context \+ horizon = 4"):
        video_clips(VideoSource(path=str(footage["thwc"]), stop=4, every=2), cfg, ext)


def test_a_forecast_worse_than_copying_the_last_frame_warns(footage):
    """On a still video repeating the last frame is exact, so a noisy flow forecast loses."""
    src = VideoSource(path=str(footage["still"]))
    cfg = video_config(src, frame_size=16, context=2, horizon=2, compressor="pca", latent_dim=4,
                       head_steps=2, width=16, heads=2, depth=1, samples=2, sample_steps=2,
                       train=forecaster_schedule(2, progress=False))
    model = train(config=cfg)
    data = video_clips(src, cfg, build_extractor(cfg))
    with pytest.warns(BaselineWarning, match="worse than repeating the last context frame"):
        result = evaluate(model, data)
    assert result.copy_last_mse == pytest.approx(0.0, abs=1e-10)
    assert result.worse_than_copy_last and result.to_dict()["copy_last_mse"] == result.copy_last_mse
    with warnings.catch_warnings():
        warnings.simplefilter("error", BaselineWarning)
        evaluate(model, data, warn=False)
    assert model.trained_on["sha256"] == _sha(footage["still"])


def test_cli_trains_on_an_array_and_forecasts_another_with_provenance(footage, cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("vfm", "train", "--out", run, "--data", footage["thwc"], "--stop", "30",
                         "--stride", "2", *SMALL)
    assert code == 0, err
    assert "training on thwc.npy: frames 0 to 29" in err and "--data" in out
    summary = _strict((run / "train.json").read_text())
    assert summary["digest"] == load_checkpoint(run / "model.pt").digest
    assert summary["trained_on"]["sha256"] == _sha(footage["thwc"])
    assert summary["trained_on"]["clip_starts"] == {"first": 0, "step": 2, "count": 14}
    assert summary["config"]["frame_width"] == 24 and summary["sciflow"]["sciflow"]
    assert summary["sciflow"]["checkpoint_sha256"] == summary["digest"]
    assert "[features]" in err and "[train]" in err  # progress lines off a terminal

    output = tmp_path / "fc" / "held_out.pt"
    code, out, err = cli("vfm", "forecast", "--checkpoint", run / "model.pt", "--data",
                         footage["npz"], "--key", "frames", "--start", "30", "-o", output,
                         "--seed", "3", "--solver", "heun")
    assert code == 0, err
    record = _strict(output.with_suffix(".json").read_text())
    assert record["model"]["checkpoint"] == str((run / "model.pt").resolve())
    assert record["model"]["digest"] == summary["digest"]
    assert record["sciflow"]["checkpoint_sha256"] == summary["digest"]
    assert (record["sciflow"]["seed"], record["sciflow"]["sampler"]) == (3, "heun")
    assert record["model"]["trained_on"]["sha256"] == _sha(footage["thwc"])
    inp = record["input"]
    assert inp["sha256"] == _sha(footage["npz"]) and inp["layout"] == "tchw"
    assert (inp["first_frame"], inp["last_frame"], inp["clips"]) == (30, 39, 7)
    assert record["sampling"] == {"samples": 2, "horizon": 2, "solver": "heun",
                                  "sample_steps": 2, "seed": 3, "sampler": "heun",
                                  "objective": "flow"}
    assert set(record["meaning"]) == set(record["scores"])
    base = record["baseline"]
    worse = base["model"] > base["baseline"]
    assert base["worse_than_baseline"] == worse and bool(record["warnings"]) == worse
    assert ("warning: the flow forecasts score worse" in err) == worse
    tensors = load_tensors(output, kind=FORECAST_KIND)
    assert tensors["features"].shape[:3] == (7, 2, 2) and tensors["provenance"] == record
    assert output.with_suffix(".png").stat().st_size > 1000
    assert "[forecast]" in err and f"forecast 7 clips of {footage['npz']}" in out


def test_cli_forecast_inherits_the_frame_rate_and_is_quiet_when_asked(footage, cli, tmp_path):
    run = tmp_path / "run"
    assert cli("vfm", "train", "--out", run, "--data", footage["thwc"], "--every", "2",
               "--fit", "resize", *SMALL, "--no-progress")[0] == 0
    code, _, err = cli("vfm", "forecast", "--checkpoint", run / "model.pt", "--data",
                       footage["thwc"], "-o", tmp_path / "f.pt", "--no-plot", "--no-progress",
                       "--clips", "3")
    assert code == 0, err
    sel = _strict((tmp_path / "f.json").read_text())["input"]["selection"]
    assert (sel["every"], sel["fit"]) == (2, "resize")
    assert "[forecast]" not in err and not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("argv, fragment", [
    (("train", "--data", "sprites", "--stride", "2"), "--stride choose frames of a video file"),
    (("train", "--data", "{dir}/none.npy"), "no such file"),
    (("train", "--data", "{dir}/thwc.npy", "--layout", "tchw"), "is it 'thwc'"),
    (("train", "--data", "{dir}/clips.npz"), "holds 2 arrays"),
    (("train", "--data", "{dir}/thwc.npy", "--start", "39"), "fewer than context + horizon"),
    (("train", "--data", "{dir}/thwc.npy", "--frame-width", "20"), "frame_width=20"),
    (("forecast", "--checkpoint", "{run}/model.pt", "-o", "{out}"),
     "name the video to forecast with --data PATH"),
    (("forecast", "--checkpoint", "{run}/model.pt", "--data", "sprites", "-o", "{out}"),
     "not sprite videos"),
    (("forecast", "--checkpoint", "{run}/model.pt", "--data", "{dir}/clip.gif", "-o", "{out}"),
     "unknown video format .gif"),
    (("forecast", "--checkpoint", "{run}/model.pt", "--data", "{dir}/thwc.npy", "-o",
      "{dir}/thwc.npy"), "the input"),
])
def test_cli_refuses_bad_video_input_and_leaves_no_output(footage, cli, tmp_path, argv,
                                                          fragment, tiny_video_run):
    before = {p: _sha(p) for p in footage["dir"].iterdir()}
    names = {"dir": footage["dir"], "run": tiny_video_run, "out": tmp_path / "o" / "f.pt"}
    args = [a.format(**names) for a in argv]
    extra = ("--out", tmp_path / "r", *SMALL) if argv[0] == "train" else ()
    code, _, err = cli("vfm", *args, *extra)
    assert code == 2 and "error:" in err and fragment in err, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()
    assert {p: _sha(p) for p in footage["dir"].iterdir()} == before


@pytest.fixture(scope="module")
def tiny_video_run(footage, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video_run")
    cfg = video_config(VideoSource(path=str(footage["thwc"])), frame_size=16, context=2,
                       horizon=2, compressor="pca", latent_dim=4, head_steps=2, width=16,
                       heads=2, depth=1, samples=2, sample_steps=2,
                       train=forecaster_schedule(2, progress=False))
    train(config=cfg).save(out / "model.pt")
    return out


def test_resume_refuses_a_video_file_that_changed(footage, tmp_path):
    path = tmp_path / "clip.npy"
    path.write_bytes(footage["thwc"].read_bytes())
    cfg = video_config(VideoSource(path=str(path)), frame_size=16, context=2, horizon=2,
                       compressor="pca", latent_dim=4, head_steps=2, width=16, heads=2, depth=1,
                       train=forecaster_schedule(2, progress=False, out_dir=str(tmp_path / "r"),
                                                 checkpoint_every=1))
    train(config=cfg)
    frames = np.load(path)
    np.save(path, frames[::-1].copy())  # same shape, other content
    longer = cfg.replace(train={"steps": 3})
    with pytest.raises(InputError, match="has changed since it began"):
        train(config=longer, resume=True)


def test_without_pyav_an_mp4_names_the_extra(footage, cli, tmp_path, monkeypatch):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "av", None)
    code, _, err = cli("vfm", "train", "--out", tmp_path / "r", "--data", video, *SMALL)
    assert code == 2 and "pip install 'sciflow[video]'" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not HAVE_AV, reason="needs PyAV (the video extra)")
def test_cli_trains_and_forecasts_an_mp4(footage, cli, tmp_path):
    from sciflow.datasets.video import write_video

    frames = np.load(footage["thwc"])
    video = write_video(tmp_path / "clip.mp4", frames, fps=10)
    run = tmp_path / "run"
    code, _, err = cli("vfm", "train", "--out", run, "--data", video, "--stop", "30", *SMALL,
                       "--no-progress")
    assert code == 0, err
    assert _strict((run / "train.json").read_text())["trained_on"]["layout"] == "decoded"
    code, _, err = cli("vfm", "forecast", "--checkpoint", run / "model.pt", "--data", video,
                       "--start", "30", "-o", tmp_path / "f.pt", "--no-progress")
    assert code == 0, err
    inp = _strict((tmp_path / "f.json").read_text())["input"]
    assert (inp["first_frame"], inp["last_frame"], inp["sha256"]) == (30, 39, _sha(video))

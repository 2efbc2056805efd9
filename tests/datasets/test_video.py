"""Video readers: arrays in both layouts and both value kinds give the same frames, the frame
range and the fit do what they say, every other input is refused naming the fix, and video files
decode through PyAV (skipped without it) or say which extra to install."""

import importlib.util
import sys

import numpy as np
import pytest
import torch

from sciflow.datasets.video import (
    VideoBackendMissing,
    detect_layout,
    file_sha256,
    fit_frames,
    frames_from_array,
    probe_video,
    read_frames,
    write_video,
)
from sciflow.errors import InputError

HAVE_AV = importlib.util.find_spec("av") is not None


def _thwc(t: int = 9, h: int = 12, w: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


@pytest.fixture
def arrays(tmp_path):
    x = _thwc()
    paths = {"thwc.npy": x, "tchw.npy": x.transpose(0, 3, 1, 2).copy()}
    for name, a in paths.items():
        np.save(tmp_path / name, a)
    np.savez(tmp_path / "one.npz", frames=x.transpose(0, 3, 1, 2))
    np.savez(tmp_path / "two.npz", frames=x, labels=np.zeros(9))
    np.save(tmp_path / "float.npy", (x / 255.0).astype(np.float32))
    return x, tmp_path


def test_both_layouts_and_value_kinds_read_the_same_frames(arrays):
    x, d = arrays
    ref = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    for name, key in (("thwc.npy", None), ("tchw.npy", None), ("one.npz", None),
                      ("two.npz", "frames")):
        got = read_frames(d / name, key=key)
        assert got.frames.shape == (9, 3, 12, 20) and got.frames.dtype == torch.float32, name
        assert torch.equal(got.frames, ref), name
        assert got.layout == ("thwc" if name in ("thwc.npy", "two.npz") else "tchw")
        assert got.total == 9 and got.source_size == (12, 20) and got.dtype == "uint8"
    as_float = read_frames(d / "float.npy").frames
    assert torch.allclose(as_float, ref, atol=1e-6) and read_frames(d / "float.npy").dtype \
        == "float32"
    # a named layout gives the same as auto; the other layout is refused with the fix
    assert torch.equal(read_frames(d / "thwc.npy", layout="thwc").frames, ref)
    with pytest.raises(InputError, match="is it 'thwc'"):
        read_frames(d / "thwc.npy", layout="tchw")


def test_grey_frames_become_rgb():
    x = _thwc()[..., :1]
    frames = frames_from_array(x)
    assert frames.shape == (9, 3, 12, 20)
    assert torch.equal(frames[:, 0], frames[:, 1]) and torch.equal(frames[:, 0], frames[:, 2])


def test_frame_range_keeps_the_file_frame_numbers(arrays):
    x, d = arrays
    got = read_frames(d / "tchw.npy", start=1, stop=8, every=3)
    assert got.indices == (1, 4, 7)
    assert torch.equal(got.frames, torch.from_numpy(x[[1, 4, 7]]).permute(0, 3, 1, 2) / 255.0)
    assert probe_video(d / "tchw.npy") == (9, 12, 20) and probe_video(d / "two.npz", key="frames") \
        == (9, 12, 20)


def test_crop_keeps_the_centre_and_resize_keeps_everything():
    frame = torch.zeros(1, 3, 8, 16)
    frame[..., 4:12] = 1.0  # a bright centre square between dark sides
    crop = fit_frames(frame, (4, 4), "crop")
    squeeze = fit_frames(frame, (4, 4), "resize")
    assert crop.shape == squeeze.shape == (1, 3, 4, 4)
    assert float(crop.min()) > 0.99  # only the centre is left
    assert float(squeeze[..., 0].max()) < 0.5 and float(squeeze.mean()) == pytest.approx(0.5, 0.05)
    same = torch.rand(2, 3, 8, 8)
    assert torch.equal(fit_frames(same, (4, 4), "crop"), fit_frames(same, (4, 4), "resize"))


@pytest.mark.parametrize("array, fragment", [
    (np.zeros((4, 5, 6, 3), dtype=np.int64), "dtype int64"),
    (np.zeros((4, 5, 6, 3), dtype=np.uint16), "frames / 65535.0"),
    (np.full((4, 5, 6, 3), 200.0, dtype=np.float32), "Divide 0-255 values by 255"),
    (np.zeros((4, 5, 6), dtype=np.uint8), "frames[..., None]"),
    (np.zeros((4, 3, 6, 3), dtype=np.uint8), "--layout thwc"),
    (np.zeros((4, 5, 6, 7), dtype=np.uint8), "no channel axis"),
    (np.zeros((4, 5, 6, 4), dtype=np.uint8), "RGBA"),
    (np.zeros((0, 5, 6, 3), dtype=np.uint8), "holds no frames"),
])
def test_arrays_that_are_not_video_are_refused(array, fragment):
    with pytest.raises(InputError) as info:
        frames_from_array(array)
    assert fragment in str(info.value)


def test_bad_float_frames_are_named():
    x = np.full((5, 4, 4, 3), 0.5, dtype=np.float32)
    x[3, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match=r"1 of 5 frames hold NaN or inf \(first: frame 13\)"):
        frames_from_array(x, first_frame=10)
    x[3, 0, 0, 0] = 1.5
    with pytest.raises(InputError, match="frame 3 spans 0.5 to 1.5"):
        frames_from_array(x)


def test_files_and_selections_that_cannot_be_read(arrays, tmp_path):
    _, d = arrays
    (tmp_path / "notes.npy").write_text("not an array")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    rows = [
        (lambda: read_frames(d / "two.npz"), "holds 2 arrays (frames, labels)"),
        (lambda: read_frames(d / "two.npz", key="pixels"), "key='pixels'"),
        (lambda: read_frames(d / "thwc.npy", start=9), "has only 9 frames"),
        (lambda: read_frames(d / "thwc.npy", start=3, stop=3), "stop=3"),
        (lambda: read_frames(d / "thwc.npy", every=0), "every=0"),
        (lambda: read_frames(d / "thwc.npy", layout="hwc"), "layout='hwc'"),
        (lambda: read_frames(d / "thwc.npy", fit="pad"), "fit='pad'"),
        (lambda: read_frames(tmp_path / "clip.gif"), "unknown video format .gif"),
        (lambda: read_frames(tmp_path / "notes.npy"), "not a readable numpy .npy"),
        (lambda: read_frames(tmp_path / "objects.npy"), "not a readable numpy .npy"),
        (lambda: detect_layout((2, 3, 4, 5), "thwc"), "has 5"),
    ]
    for call, fragment in rows:
        with pytest.raises(InputError) as info:
            call()
        assert fragment in str(info.value), fragment
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_frames(tmp_path / "none.npy")


def test_sha256_is_of_the_bytes(arrays):
    import hashlib

    _, d = arrays
    assert file_sha256(d / "thwc.npy") == hashlib.sha256((d / "thwc.npy").read_bytes()).hexdigest()


def test_without_pyav_a_video_file_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(VideoBackendMissing) as info:
        read_frames(path)
    assert "sciflow[video]" in str(info.value) and ".npy" in str(info.value)
    assert isinstance(info.value, InputError) and isinstance(info.value, ModuleNotFoundError)


@pytest.mark.skipif(not HAVE_AV, reason="needs PyAV (the video extra)")
def test_mp4_decodes_and_fits_as_it_goes(tmp_path):
    t = np.linspace(0, 1, 12)[:, None, None, None]
    ramp = np.linspace(0, 1, 48)[None, None, :, None]
    x = np.clip(255 * (0.2 + 0.6 * ramp * (0.5 + 0.5 * t)), 0, 255).astype(np.uint8)
    x = np.broadcast_to(x, (12, 32, 48, 3)).copy()
    write_video(tmp_path / "clip.mp4", x)
    assert probe_video(tmp_path / "clip.mp4") == (12, 32, 48)
    got = read_frames(tmp_path / "clip.mp4", start=2, every=3, size=(16, 24), fit="resize")
    assert got.indices == (2, 5, 8, 11) and got.frames.shape == (4, 3, 16, 24)
    assert got.source_size == (32, 48) and got.layout == "decoded"
    want = fit_frames(torch.from_numpy(x[[2, 5, 8, 11]]).permute(0, 3, 1, 2) / 255.0, (16, 24),
                      "resize")
    assert float((got.frames - want).abs().mean()) < 0.05  # a lossy codec
    with pytest.raises(InputError, match="arrays only"):
        read_frames(tmp_path / "clip.mp4", layout="thwc")
    with pytest.raises(InputError, match="uint8"):
        write_video(tmp_path / "bad.mp4", x.astype(np.float32))

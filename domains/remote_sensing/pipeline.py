"""Train, sample and evaluate the remote-sensing flow model; apply it to whole cubes.

One conditional flow (UniTS-style, arXiv 2512.04461) learns p(cloud-free series, land-cover
maps | what was observed). Training draws a task per series (reconstruction, cloud removal,
forecasting, change detection; see :mod:`.data`), so the same network serves all four, and
regresses the clean state with :class:`~sciflow.matcher.FlowMatcher` (linear path,
``target="x1"``: the network predicts the data, converted to a velocity for the ODE solver).
Pixels whose clear value is given weigh ``given_weight`` in the loss: copying them is easy,
the gaps are what matters.

Sampling integrates the ODE from Gaussian noise ``samples`` times; the ensemble mean is the
point estimate, its spread the uncertainty, and the class channels' votes give per-date maps.
Given clear pixels are pasted back (data consistency) for the model and for every baseline.

Whole cubes are processed tile by tile (``spec.tile`` pixels, ``overlap`` blended with linear
ramps) and in windows of ``spec.frames`` dates (half-overlapping, blended with triangular
weights). A dask-backed cube (``load_cube(path, chunks=...)``) is processed block by block of
its chunk grid, each block read with an ``overlap`` margin, so the result is a lazy cube that
:func:`~sciflow.datasets.sentinel.save_cube` streams to disk: a scene larger than memory works.
Samples in overlaps are averaged across tiles, which lowers the reported spread there.

Steering (optional, ``steer=eta``): FlowChef (Patel et al. 2024, "Steering rectified flow models
in the vector field for controlled image generation") pulls every Euler step towards a masked
measurement y = M x of the state (:func:`make_measurement`: the standardised clear reflectance
of chosen pixels and dates), with no backpropagation through the network. With
v = v_theta(x_t, t) frozen, x1_hat = x_t + (1 - t) v and L(x1_hat) = ||M (x1_hat - y)||^2,

    x1_hat <- x1_hat - eta grad L(x1_hat) = x1_hat - 2 eta M (x1_hat - y),
    x_{t+dt} = x1_hat - (1 - t - dt) v

(x_t moves with x1_hat, since d x1_hat / d x_t = I on the linear path). The residual on the
measured entries shrinks by the factor 1 - 2 eta per step, so eta = 1/2 is the exact projection
onto the measurement, and the last step (1 - t = dt) lands on it. It helps for pixels that are
observed but not given to the model's condition (a date withheld from it: benchmarks/inference.py,
section 5, +0.4 dB on that date's cloudy pixels at eta = 1/2). On pixels that are in the
condition it only enforces while sampling the consistency that pasting them back enforces
afterwards; with that section's model it brought no gain there.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from sciflow.checkpoint import load_checkpoint
from sciflow.datasets.sentinel import CubeError, validate_cube
from sciflow.domains.remote_sensing.baselines import (
    BASELINES,
    CentroidClassifier,
    Climatology,
    linear_interpolation,
    persistence,
)
from sciflow.domains.remote_sensing.data import (
    TASKS,
    SeriesBatch,
    Standardizer,
    TaskBatch,
    TaskOptions,
    decode_state,
    make_task,
    series_from_cube,
    stack_series,
    tiles_from_cube,
)
from sciflow.domains.remote_sensing.metrics import (
    ChangeScores,
    ImageScores,
    change_scores,
    image_scores,
)
from sciflow.domains.remote_sensing.model import RSModelSpec, RSNetwork, build_model
from sciflow.matcher import FlowMatcher, VelocityModel
from sciflow.solvers import odeint
from sciflow.steering import SteeringLoss, flowchef, masked_measurement_loss
from sciflow.train import TrainConfig, Trainer, TrainResult

__all__ = [
    "RSModel",
    "TrainOptions",
    "Prediction",
    "train_rs",
    "load_rs",
    "predict_series",
    "sample_states",
    "velocity_field",
    "Measurement",
    "make_measurement",
    "check_steer",
    "apply_to_cube",
    "evaluate_task",
    "fit_reference",
    "Reference",
]

MATCHER = FlowMatcher(target="x1")


@dataclass(frozen=True)
class RSModel:
    """A trained network with what it needs to read cubes: its spec and standardiser."""

    net: RSNetwork
    spec: RSModelSpec
    standardizer: Standardizer

    def meta(self) -> dict[str, Any]:
        return {"remote_sensing": {"spec": self.spec.to_dict(),
                                   "standardizer": self.standardizer.to_dict()}}


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Training settings.

    task_weights: relative frequency of each task in :data:`~.data.TASKS` order. given_weight:
    loss weight of pixels whose clear value is given. sar_dropout: probability that a batch
    gets no SAR (so one model also works optical-only). max_drop_dates / max_horizon: upper
    bounds of the random reconstruction gaps and forecast horizons. extra_gap_prob: probability
    that a series also loses the clear pixels under another series' clouds (artificial gaps).
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    task_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    given_weight: float = 0.2
    sar_dropout: float = 0.25
    max_drop_dates: int = 3
    max_horizon: int = 3
    extra_gap_prob: float = 0.5
    ema_decay: float = 0.995
    warmup_steps: int = 100
    out_dir: str | Path | None = None
    progress: bool | None = None
    log_every: int = 50

    def __post_init__(self) -> None:
        if len(self.task_weights) != len(TASKS) or min(self.task_weights) < 0 \
                or sum(self.task_weights) <= 0:
            raise ValueError(f"task_weights must be {len(TASKS)} non-negative numbers (for "
                             f"{TASKS}) with a positive sum, got {self.task_weights}")
        for name in ("given_weight", "sar_dropout", "extra_gap_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"TrainOptions.{name} must lie in [0, 1], got {v}")


def _as_training_series(data: SeriesBatch | Sequence[xr.Dataset], spec: RSModelSpec) -> SeriesBatch:
    if isinstance(data, SeriesBatch):
        return data
    if isinstance(data, xr.Dataset):
        data = [data]
    parts = [tiles_from_cube(c, tile=spec.tile, frames=spec.frames, bands=spec.bands,
                             sar=spec.sar, classes=spec.classes or None) for c in data]
    return stack_series(parts)


def _random_window(s: SeriesBatch, spec: RSModelSpec, g: torch.Generator) -> SeriesBatch:
    _, t, _, h, w = s.shape
    if t > spec.frames:
        t0 = int(torch.randint(0, t - spec.frames + 1, (1,), generator=g))
        s = s.frames(t0, t0 + spec.frames)
    if h > spec.tile or w > spec.tile:
        y0 = int(torch.randint(0, h - spec.tile + 1, (1,), generator=g))
        x0 = int(torch.randint(0, w - spec.tile + 1, (1,), generator=g))
        s = s.crop(y0, x0, spec.tile, spec.tile)
    rot = int(torch.randint(0, 4, (1,), generator=g))
    flip = bool(torch.rand(1, generator=g) < 0.5)
    return s.transform(rot, flip)


def train_rs(data: SeriesBatch | Sequence[xr.Dataset], spec: RSModelSpec | None = None, *,
             options: TrainOptions | None = None) -> tuple[RSModel, TrainResult]:
    """Train one model for all four tasks on cubes (cut into tiles) or on a ready SeriesBatch.

    With a ``truth`` (``clear_reflectance``) the loss covers every pixel; without it, only the
    clear observations, some of which each task hides (self-supervised gap filling). Class
    channels are trained where ``landcover`` exists. Returns the EMA model and the run result.
    """
    spec = spec if spec is not None else RSModelSpec()
    options = options if options is not None else TrainOptions()
    series = _as_training_series(data, spec)
    b, t, c, h, w = series.shape
    if c != len(spec.bands):
        raise CubeError(f"training data have {c} bands, the spec names {len(spec.bands)}")
    if spec.sar and series.sar is None:
        raise CubeError(f"the spec uses SAR {spec.sar} but the training data have none; use "
                        "RSModelSpec(sar=()) for an optical-only model")
    if spec.classes and series.labels is None:
        raise CubeError("the spec has land-cover classes but the training data have no "
                        "'landcover'; use RSModelSpec(classes=()) without labels")
    if h < spec.tile or w < spec.tile or t < spec.frames:
        raise CubeError(f"training series ({t} dates, {h}x{w} px) are smaller than the model's "
                        f"window ({spec.frames} dates, {spec.tile}x{spec.tile} px)")
    standardizer = Standardizer.fit(series)
    net = build_model(spec)
    weights = torch.tensor(options.task_weights, dtype=torch.float64)
    n_classes = len(spec.classes)

    def batch_fn(step: int, g: torch.Generator) -> TaskBatch:
        idx = torch.randint(0, b, (options.batch_size,), generator=g)
        s = _random_window(series.index(idx), spec, g)
        tasks = [TASKS[int(i)] for i in torch.multinomial(weights, options.batch_size, True,
                                                          generator=g)]
        use_sar = bool(spec.sar) and bool(torch.rand(1, generator=g) >= options.sar_dropout)
        task_opts = TaskOptions(
            drop_dates=int(torch.randint(0, options.max_drop_dates + 1, (1,), generator=g)),
            horizon=int(torch.randint(1, options.max_horizon + 1, (1,), generator=g)),
            use_sar=use_sar)
        extra = None
        if options.extra_gap_prob > 0:
            other = torch.roll(s.available & ~s.clear, 1, dims=0)
            pick = torch.rand(options.batch_size, generator=g) < options.extra_gap_prob
            extra = other & pick[:, None, None, None]
        batch = make_task(s, tasks, standardizer=standardizer, n_classes=n_classes,
                          use_sar_channels=bool(spec.sar), options=task_opts, generator=g,
                          extra_hidden=extra, prior=spec.prior)
        weight = torch.where(batch.given, options.given_weight, 1.0)[:, :, None]
        weight = weight.expand_as(batch.x1)
        if batch.loss_mask is not None:
            weight = weight * batch.loss_mask
        return TaskBatch(batch.x1, batch.cond, batch.given, batch.target, weight, batch.tasks)

    def loss_fn(model: torch.nn.Module, batch: TaskBatch) -> Tensor:
        return MATCHER.loss(model, batch.x1, cond=batch.cond, mask=batch.loss_mask)

    config = TrainConfig(steps=options.steps, lr=options.lr, schedule="cosine",
                         warmup_steps=min(options.warmup_steps, max(options.steps // 10, 1)),
                         ema_decay=options.ema_decay, seed=options.seed, out_dir=options.out_dir,
                         progress=options.progress, log_every=options.log_every, grad_clip=1.0)
    model = RSModel(net, spec, standardizer)
    trainer = Trainer(net, loss_fn, config, meta=model.meta())
    result = trainer.fit(batch_fn)
    return RSModel(trainer.ema_model.eval(), spec, standardizer), result


def load_rs(path: str | Path) -> RSModel:
    """Load a checkpoint written by :func:`train_rs` (EMA weights)."""
    ckpt = load_checkpoint(path)
    meta = ckpt.meta.get("remote_sensing")
    if meta is None:
        raise CubeError(f"{str(path)!r} is not a remote-sensing checkpoint (no 'remote_sensing' "
                        "entry in its metadata)")
    spec = RSModelSpec.from_dict(meta["spec"])
    net = build_model(spec)
    net.load_state_dict(ckpt.state_dict)
    return RSModel(net.eval(), spec, Standardizer.from_dict(meta["standardizer"]))


# ----------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Prediction:
    """An ensemble prediction for a batch of series.

    reflectance (B, T, C, H, W): ensemble mean, given clear pixels pasted in.
    reflectance_std (B, T, C, H, W): ensemble standard deviation (0 on given pixels).
    samples (S, B, T, C, H, W): the members (pasted). class_probability (B, T, K, H, W): share
    of members voting each class (None without classes). labels (B, T, H, W): its argmax.
    change_probability (B, T, H, W): share of members whose label differs from the previous
    date (0 on the first date). given, target (B, T, H, W) as in :class:`~.data.TaskBatch`.
    """

    reflectance: Tensor
    reflectance_std: Tensor
    samples: Tensor
    class_probability: Tensor | None
    labels: Tensor | None
    change_probability: Tensor | None
    given: Tensor
    target: Tensor


def _window_starts(n: int, size: int, stride: int) -> list[int]:
    if n <= size:
        return [0]
    starts = list(range(0, n - size + 1, max(stride, 1)))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def _ramp(n: int, overlap: int) -> Tensor:
    """Blend weights along one axis: a linear ramp over ``overlap`` px at both ends, > 0."""
    i = torch.arange(n, dtype=torch.float32)
    edge = torch.minimum(i, n - 1 - i) + 1
    return torch.clamp(edge / (overlap + 1), max=1.0) if overlap > 0 else torch.ones(n)


def velocity_field(model: RSModel) -> VelocityModel:
    """The velocity field ``v(x, t, *, cond, batch)`` of a model, for the ODE solvers.

    The network predicts the clean state x1_hat; on the linear path v = (x1_hat - x) / (1 - t).
    """
    return MATCHER.velocity(model.net)


def check_steer(steer: float | None) -> float | None:
    """Validate a FlowChef step size: None (no steering) or a finite eta in (0, 1).

    Each step multiplies the residual M (x1_hat - y) by 1 - 2 eta: eta in (0, 1) shrinks it,
    eta = 1/2 removes it, eta >= 1 no longer shrinks it. Returns ``float(steer)`` or None.
    """
    if steer is None:
        return None
    if isinstance(steer, bool) or not isinstance(steer, numbers.Real):
        raise TypeError(f"steer (the FlowChef step size eta) must be a number or None, got "
                        f"{type(steer).__name__} {steer!r}")
    eta = float(steer)
    if not (math.isfinite(eta) and 0.0 < eta < 1.0):
        raise ValueError(f"steer (the FlowChef step size eta) must be a finite number in (0, 1), "
                         f"got {steer!r}: each step scales the residual on the measured pixels "
                         "by 1 - 2 eta, so 0.5 matches them exactly and eta >= 1 diverges or "
                         "oscillates; use None for the plain ODE")
    return eta


@dataclass(frozen=True)
class Measurement:
    """A masked measurement y = M x of the generated state, the target of steering.

    y (B, T, C + K, H, W): the standardised clear reflectance on the measured entries, 0 elsewhere.
    mask (B, T, C + K, H, W) float: 1 on the C band channels of the measured pixels, 0 elsewhere
    (class channels are never measured).
    """

    y: Tensor
    mask: Tensor

    def loss(self) -> SteeringLoss:
        """L(x1_hat) = ||M (x1_hat - y)||^2 per series
        (:func:`sciflow.steering.masked_measurement_loss`)."""
        return masked_measurement_loss(self.y, self.mask)


def _pixel_mask(name: str, mask: Tensor, series: SeriesBatch) -> Tensor:
    """Check a (B, T, H, W) bool pixel mask against a series."""
    b, t, _, h, w = series.shape
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (B, T, H, W), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if tuple(mask.shape) != (b, t, h, w):
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected (B, T, H, W) = "
                         f"{(b, t, h, w)} like the series")
    return mask.to(series.reflectance.device)


def make_measurement(model: RSModel, series: SeriesBatch, observed: Tensor | None = None
                     ) -> Measurement:
    """The masked measurement of a batch of series: which pixels of which dates are observed.

    ``observed`` (B, T, H, W) bool, a subset of ``series.clear`` (default: every clear pixel);
    y holds those pixels' reflectance standardised with ``model.standardizer``, in the layout of
    the state the model generates (the C bands, then K class channels that are never measured).
    Shapes: series (B, T, C, H, W) -> Measurement.y, .mask (B, T, C + K, H, W).
    """
    b, t, c, h, w = series.shape
    if c != len(model.spec.bands):
        raise CubeError(f"the series has {c} bands, the model was trained on "
                        f"{len(model.spec.bands)} ({list(model.spec.bands)})")
    observed = series.clear if observed is None else _pixel_mask("observed", observed, series)
    cloudy = observed & ~series.clear
    if bool(cloudy.any()):
        raise ValueError(f"observed marks {int(cloudy.sum())} pixels that are not clear "
                         "observations of the series (cloudy or not acquired); a measurement "
                         "can only hold clear reflectance")
    m = observed[:, :, None].to(series.reflectance.dtype)
    shape = (b, t, model.spec.channels, h, w)
    mask = series.reflectance.new_zeros(shape)
    y = series.reflectance.new_zeros(shape)
    mask[:, :, :c] = m
    y[:, :, :c] = model.standardizer.bands(series.reflectance) * m
    return Measurement(y=y, mask=mask)


@torch.no_grad()
def sample_states(model: RSModel, batch: TaskBatch, *, samples: int, steps: int,
                  method: str = "euler", seed: int = 0, steer: float | None = None,
                  measurement: Measurement | None = None) -> Tensor:
    """``samples`` states per tile, integrated from Gaussian noise (seeded by ``seed``).

    steer=None: the plain ODE (``method``, ``steps``). steer=eta: FlowChef Euler steps towards
    ``measurement`` (module docstring; ``method`` must be "euler"); the network runs without
    autograd either way, and the NFE is ``steps`` per member.
    Shapes: batch.x1 (B, T, C + K, H, W) -> (S, B, T, C + K, H, W).
    """
    eta = check_steer(steer)
    if eta is None and measurement is not None:
        raise ValueError("a measurement is only used when steering: pass steer=eta too")
    if eta is not None:
        if measurement is None:
            raise ValueError("steer needs a measurement (see make_measurement)")
        if method != "euler":
            raise ValueError(f"steering (FlowChef) integrates with Euler steps, got "
                             f"method={method!r}; use method='euler'")
        if measurement.y.shape != batch.x1.shape:
            raise ValueError(f"the measurement has shape {tuple(measurement.y.shape)} but the "
                             f"tiles' state {tuple(batch.x1.shape)}")
        loss = measurement.loss()
    g = torch.Generator().manual_seed(seed)
    field_ = velocity_field(model)
    out = []
    for _ in range(samples):
        x0 = torch.randn(batch.x1.shape, generator=g)
        if eta is None:
            out.append(odeint(field_, x0, method=method, steps=steps, cond=batch.cond).x)
        else:
            out.append(flowchef(field_, x0, loss=loss, steps=steps, step_size=eta,
                                path=MATCHER.path, cond=batch.cond).x)
    return torch.stack(out)


def _pad_pixels(mask: Tensor, height: int, width: int) -> Tensor:
    """Pad a (B, T, H, W) bool mask with False up to (height, width), like SeriesBatch.pad_to."""
    ph, pw = height - mask.shape[-2], width - mask.shape[-1]
    if ph == 0 and pw == 0:
        return mask
    return torch.nn.functional.pad(mask.to(torch.uint8), (0, pw, 0, ph)).bool()


def predict_series(model: RSModel, series: SeriesBatch, task: str, *,
                   options: TaskOptions | None = None, samples: int = 4, steps: int = 8,
                   method: str = "euler", seed: int = 0, overlap: int = 8,
                   tiles_per_batch: int = 16, steer: float | None = None,
                   measured: Tensor | None = None, withhold: Tensor | None = None
                   ) -> Prediction:
    """Run one task on a batch of series of any size, tile by tile and window by window.

    ``options.drop_dates`` is ignored here (nothing the caller gave is hidden; remove dates
    from the series to test reconstruction, see :func:`~.data.hide_dates`). For forecasting,
    the last ``options.horizon`` dates are the ones forecast, from the ``spec.frames`` dates
    before them at most; earlier dates are not predicted (they keep the given observations,
    elsewhere the training mean). A series without SAR runs optical-only.

    Parameters
    ----------
    steer:
        None (default): the plain ODE. eta in (0, 1): FlowChef steering of every Euler step
        towards the clear reflectance of the ``measured`` pixels (module docstring; eta = 0.5
        matches them exactly). No gradient flows through the network; NFE stays ``steps``.
    measured:
        (B, T, H, W) bool, clear pixels that form the steering measurement (only with
        ``steer``). Default: the pixels given to the model's condition.
    withhold:
        (B, T, H, W) bool, clear pixels kept out of the condition: they are predicted (part of
        ``target``, not pasted back). With ``measured=withhold`` they reach the sampler only
        through steering, the case where steering helps most.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    if samples < 1 or steps < 1:
        raise ValueError(f"samples and steps must be >= 1, got {samples} and {steps}")
    steer = check_steer(steer)
    if steer is not None and method != "euler":
        raise ValueError(f"steering (FlowChef) integrates with Euler steps, got method={method!r}; "
                         "use method='euler'")
    if measured is not None:
        if steer is None:
            raise ValueError("measured pixels are only used when steering: pass steer=eta too")
        measured = _pixel_mask("measured", measured, series)
        bad = measured & ~series.clear
        if bool(bad.any()):
            raise ValueError(f"measured marks {int(bad.sum())} pixels that are not clear "
                             "observations of the series (cloudy or not acquired)")
    if withhold is not None:
        withhold = _pixel_mask("withhold", withhold, series)
    options = options if options is not None else TaskOptions()
    options = TaskOptions(drop_dates=0, horizon=options.horizon, use_sar=options.use_sar)
    spec, std = model.spec, model.standardizer
    b, t, c, h, w = series.shape
    if c != len(spec.bands):
        raise CubeError(f"the series has {c} bands, the model was trained on {len(spec.bands)} "
                        f"({list(spec.bands)})")
    if task == "change_detection" and not spec.classes:
        raise ValueError("this model was trained without land-cover classes: no change detection")
    if bool(spec.sar) and series.sar is None and options.use_sar:
        options = TaskOptions(drop_dates=0, horizon=options.horizon, use_sar=False)
    tile = spec.tile
    hp, wp = max(h, tile), max(w, tile)
    padded = series.pad_to(hp, wp)
    if task == "forecasting":
        if not 1 <= options.horizon < t:
            raise ValueError(f"forecasting needs 1 <= horizon < T = {t}, got {options.horizon}")
        t_starts = [max(t - spec.frames, 0)]
        t_len = min(spec.frames, t)
    else:
        t_len = min(spec.frames, t)
        t_starts = _window_starts(t, t_len, t_len // 2)
    y_starts = _window_starts(hp, tile, tile - overlap)
    x_starts = _window_starts(wp, tile, tile - overlap)
    w_space = _ramp(tile, overlap)[:, None] * _ramp(tile, overlap)[None, :]
    w_time = _ramp(t_len, t_len // 2 if len(t_starts) > 1 else 0)
    n_ch = spec.channels
    acc = torch.zeros(samples, b, t, n_ch, hp, wp)
    wsum = torch.zeros(1, b, t, 1, hp, wp)
    windows = [(t0, y0, x0) for t0 in t_starts for y0 in y_starts for x0 in x_starts]
    n_classes = len(spec.classes)
    pad_measured = None if measured is None else _pad_pixels(measured, hp, wp)
    pad_withhold = None if withhold is None else _pad_pixels(withhold, hp, wp)

    def cut(mask: Tensor | None, group: list[tuple[int, int, int]]) -> Tensor | None:
        if mask is None:
            return None
        return torch.cat([mask[:, t0:t0 + t_len, y0:y0 + tile, x0:x0 + tile]
                          for t0, y0, x0 in group])

    for i in range(0, len(windows), max(1, tiles_per_batch // max(b, 1))):
        group = windows[i:i + max(1, tiles_per_batch // max(b, 1))]
        parts = stack_series([padded.frames(t0, t0 + t_len).crop(y0, x0, tile, tile)
                              for t0, y0, x0 in group])
        tb = make_task(parts, task, standardizer=std, n_classes=n_classes,
                       use_sar_channels=bool(spec.sar), options=options, prior=spec.prior,
                       extra_hidden=cut(pad_withhold, group))
        meas = None
        if steer is not None:
            observed = cut(pad_measured, group)
            meas = make_measurement(model, parts, tb.given if observed is None else observed)
        states = sample_states(model, tb, samples=samples, steps=steps, method=method,
                               seed=seed + i, steer=steer, measurement=meas)
        states = states.reshape(samples, len(group), b, t_len, n_ch, tile, tile)
        for j, (t0, y0, x0) in enumerate(group):
            wgt = (w_time[:, None, None, None] * w_space[None, None])  # (t_len, 1, tile, tile)
            acc[:, :, t0:t0 + t_len, :, y0:y0 + tile, x0:x0 + tile] += states[:, j] * wgt
            wsum[:, :, t0:t0 + t_len, :, y0:y0 + tile, x0:x0 + tile] += wgt
    covered = wsum > 0
    states = torch.where(covered, acc / wsum.clamp_min(1e-12), torch.zeros_like(acc))
    states = states[..., :h, :w]
    refl, scores = decode_state(states, std, c)
    full = make_task(series, task, standardizer=std, n_classes=n_classes,
                     use_sar_channels=bool(spec.sar), options=options, prior=False,
                     extra_hidden=withhold)
    given = full.given
    target = full.target
    if task == "forecasting":
        target = target.clone()
        target[:, : t - options.horizon] = False
    pasted = torch.where(given[None, :, :, None], series.reflectance[None], refl)
    mean = pasted.mean(0)
    spread = pasted.std(0, unbiased=False) if samples > 1 else torch.zeros_like(mean)
    probs = labels = change = None
    if scores is not None:
        votes = scores.argmax(dim=3)  # (S, B, T, H, W)
        probs = torch.nn.functional.one_hot(votes, n_classes).float().mean(0).permute(0, 1, 4, 2, 3)
        labels = probs.argmax(dim=2)
        flips = (votes[:, :, 1:] != votes[:, :, :-1]).float().mean(0)
        change = torch.cat([torch.zeros_like(flips[:, :1]), flips], dim=1)
    return Prediction(reflectance=mean, reflectance_std=spread, samples=pasted,
                      class_probability=probs, labels=labels, change_probability=change,
                      given=given, target=target)


# ----------------------------------------------------------------------------- whole cubes


def _output_vars(pred: Prediction, task: str, spec: RSModelSpec, horizon: int
                 ) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Prediction of one series (B = 1) as named arrays with dims."""
    out: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    sl = slice(-horizon, None) if task == "forecasting" else slice(None)
    if task == "change_detection":
        out["landcover"] = (("time", "y", "x"), pred.labels[0].numpy().astype(np.int8))
        out["class_probability"] = (("time", "class", "y", "x"),
                                    pred.class_probability[0].numpy().astype(np.float32))
        out["change_probability"] = (("time", "y", "x"),
                                     pred.change_probability[0].numpy().astype(np.float32))
    else:
        out["reflectance"] = (("time", "band", "y", "x"),
                              pred.reflectance[0, sl].numpy().astype(np.float32))
        out["reflectance_std"] = (("time", "band", "y", "x"),
                                  pred.reflectance_std[0, sl].numpy().astype(np.float32))
        out["filled"] = (("time", "y", "x"), (~pred.given[0, sl]).numpy())
    return out


def _future_cube(cube: xr.Dataset, dates: Sequence[Any]) -> xr.Dataset:
    """The cube (reflectance, valid, cloud, sar) with empty, not-acquired dates appended."""
    new = np.asarray(dates, dtype="datetime64[ns]")
    last = cube["time"].values.max()
    if new.ndim != 1 or (np.diff(new.astype(np.int64)) <= 0).any() or (new <= last).any():
        raise CubeError(f"forecast dates must be increasing and after the cube's last date "
                        f"{np.datetime_as_string(last, unit='D')}, got {new}")
    keep = [v for v in ("reflectance", "valid", "cloud", "sar") if v in cube]
    base = cube[keep].drop_vars("doy", errors="ignore")
    tail = base.isel(time=[0] * len(new)).assign_coords(time=new)
    tail = tail.assign({name: xr.full_like(var, False if var.dtype == bool else np.nan)
                        for name, var in tail.data_vars.items()})
    return validate_cube(xr.concat([base, tail], dim="time"))


def apply_to_cube(model: RSModel, cube: xr.Dataset, task: str, *, samples: int = 4,
                  steps: int = 8, seed: int = 0, overlap: int = 8, use_sar: bool = True,
                  forecast_dates: Sequence[Any] | None = None, steer: float | None = None
                  ) -> xr.Dataset:
    """Run a task on a cube and return the result as a cube (lazy when the input is dask-backed).

    reconstruction / cloud_removal: ``reflectance`` (all dates, gaps filled; cloud_removal also
    reads the cloudy values and SAR), ``reflectance_std``, ``filled`` (pixels predicted).
    forecasting: the same variables for ``forecast_dates`` only (appended after the last date).
    change_detection: ``landcover`` (time, y, x) with CF flag attributes, ``class_probability``
    (time, class, y, x), ``change_probability`` (time, y, x) and ``change`` (label differs
    from the previous date). Coordinates and the CRS (``spatial_ref``) are carried over.
    ``steer``: FlowChef step size eta in (0, 1) that steers sampling towards the cube's clear
    pixels (see :func:`predict_series`), None for the plain ODE; recorded in the attributes.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    steer = check_steer(steer)  # now: a lazy cube would only fail when computed
    spec = model.spec
    cube = validate_cube(cube)
    horizon = 0
    if task == "forecasting":
        if not forecast_dates:
            raise ValueError("forecasting needs forecast_dates (the future dates to predict)")
        horizon = len(forecast_dates)
        if horizon >= spec.frames:
            raise ValueError(f"at most {spec.frames - 1} dates can be forecast at once by this "
                             f"model (its window is {spec.frames} dates), got {horizon}")
        cube = _future_cube(cube, forecast_dates)
    use_sar = use_sar and bool(spec.sar) and "sar" in cube
    options = TaskOptions(drop_dates=0, horizon=max(horizon, 1), use_sar=use_sar)
    sar = spec.sar if use_sar else ()  # () reads no SAR: the model then runs optical-only

    def run(window: xr.Dataset, block_seed: int) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        s = series_from_cube(window, bands=spec.bands, sar=sar, classes=spec.classes or None)
        pred = predict_series(model, s, task, options=options, samples=samples, steps=steps,
                              seed=block_seed, overlap=overlap, steer=steer)
        return _output_vars(pred, task, spec, horizon)

    refl = cube["reflectance"]
    lazy = refl.chunks is not None
    if not lazy:
        arrays = run(cube, seed)
    else:
        n_out = horizon if task == "forecasting" else cube.sizes["time"]
        arrays = _lazy_blocks(cube, run, _schema(task, spec, n_out), seed=seed, margin=overlap)
    times = cube["time"].values[-horizon:] if task == "forecasting" else cube["time"].values
    coords: dict[str, Any] = {"time": times, "y": cube["y"].values, "x": cube["x"].values}
    if task == "change_detection":
        coords["class"] = list(spec.classes)
    else:
        coords["band"] = list(spec.bands)
    out = xr.Dataset({k: (dims, a) for k, (dims, a) in arrays.items()}, coords=coords)
    if task == "change_detection":
        out["landcover"].attrs.update({"flag_values": np.arange(len(spec.classes), dtype=np.int8),
                                       "flag_meanings": " ".join(spec.classes)})
        prev = out["landcover"].shift(time=1)
        out["change"] = (out["landcover"] != prev) & prev.notnull()
    if "spatial_ref" in cube.coords:
        out = out.assign_coords(spatial_ref=cube["spatial_ref"])
        for name in out.data_vars:
            out[name].attrs["grid_mapping"] = "spatial_ref"
    out.attrs.update({"source": f"sciflow remote-sensing flow model, task {task}",
                      "samples": samples, "ode_steps": steps})
    if steer is not None:
        out.attrs["flowchef_step_size"] = steer
    return out


def _schema(task: str, spec: RSModelSpec, n_times: int
            ) -> dict[str, tuple[tuple[str, ...], tuple[int, ...], Any]]:
    """Names, dims, leading shapes and dtypes of :func:`_output_vars` (for lazy arrays)."""
    if task == "change_detection":
        k = len(spec.classes)
        return {"landcover": (("time", "y", "x"), (n_times,), np.int8),
                "class_probability": (("time", "class", "y", "x"), (n_times, k), np.float32),
                "change_probability": (("time", "y", "x"), (n_times,), np.float32)}
    c = len(spec.bands)
    return {"reflectance": (("time", "band", "y", "x"), (n_times, c), np.float32),
            "reflectance_std": (("time", "band", "y", "x"), (n_times, c), np.float32),
            "filled": (("time", "y", "x"), (n_times,), np.bool_)}


def _lazy_blocks(cube: xr.Dataset, run: Any, schema: dict[str, tuple[tuple[str, ...],
                 tuple[int, ...], Any]], *, seed: int, margin: int
                 ) -> dict[str, tuple[tuple[str, ...], Any]]:
    """Lazy dask arrays: one delayed job per (y, x) chunk of the cube, each reading its chunk
    plus a ``margin`` from the (lazy) cube and cropping the margin off its result."""
    import dask
    import dask.array as da

    ychunks = cube["reflectance"].chunksizes["y"]
    xchunks = cube["reflectance"].chunksizes["x"]
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    y_edges = np.concatenate([[0], np.cumsum(ychunks)]).astype(int)
    x_edges = np.concatenate([[0], np.cumsum(xchunks)]).astype(int)

    def job(ya: int, yb: int, xa: int, xb: int, y0: int, y1: int, x0: int, x1: int,
            block_seed: int) -> dict[str, np.ndarray]:
        window = cube.isel(y=slice(ya, yb), x=slice(xa, xb)).load()
        res = run(window, block_seed)
        return {k: a[..., y0 - ya:y1 - ya, x0 - xa:x1 - xa] for k, (_, a) in res.items()}

    rows: dict[str, list[list[Any]]] = {k: [] for k in schema}
    for i in range(len(ychunks)):
        row: dict[str, list[Any]] = {k: [] for k in schema}
        for j in range(len(xchunks)):
            y0, y1, x0, x1 = y_edges[i], y_edges[i + 1], x_edges[j], x_edges[j + 1]
            args = (max(0, y0 - margin), min(ny, y1 + margin), max(0, x0 - margin),
                    min(nx, x1 + margin), y0, y1, x0, x1, seed + 1000 * i + j)
            d = dask.delayed(job, pure=False)(*(int(a) for a in args))
            for k, (_, lead, dtype) in schema.items():
                row[k].append(da.from_delayed(d[k], shape=lead + (y1 - y0, x1 - x0),
                                              dtype=dtype))
        for k in schema:
            rows[k].append(row[k])
    return {k: (schema[k][0], da.block(rows[k])) for k in schema}


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Reference:
    """What the reference baselines learn from the training set: a monthly climatology and a
    per-(month, class) centroid classifier (None without labels)."""

    climatology: Climatology
    classifier: CentroidClassifier | None


def fit_reference(train: SeriesBatch, n_classes: int) -> Reference:
    """Fit the climatology and the centroid classifier on training series with a truth."""
    if train.truth is None:
        raise ValueError("the reference baselines need training series with a truth")
    clim = Climatology.fit(train.truth, train.doy)
    clf = None
    if n_classes and train.labels is not None:
        clf = CentroidClassifier.fit(train.truth, train.labels, train.doy, n_classes)
    return Reference(clim, clf)


def evaluate_task(model: RSModel | None, series: SeriesBatch, task: str, *,
                  options: TaskOptions | None = None, reference: Reference | None = None,
                  samples: int = 4, steps: int = 8, seed: int = 0, batch_size: int = 16,
                  include_baselines: bool = True
                  ) -> dict[str, ImageScores | ChangeScores]:
    """Scores of the model (when given) and of the baselines for one task on series with a truth.

    Image tasks: :class:`ImageScores` on the task's target pixels, for "model" and each
    baseline (last / closest observation, linear interpolation for gap filling and cloud
    removal; persistence and climatology for forecasting). Change detection:
    :class:`ChangeScores` for "model" and "centroid on linear interpolation".
    """
    if series.truth is None:
        raise ValueError("evaluation needs series with a truth (clear_reflectance)")
    options = options if options is not None else TaskOptions()
    results: dict[str, ImageScores | ChangeScores] = {}
    b = series.shape[0]
    n_cls = len(model.spec.classes) if model is not None else (
        reference.classifier.centroids.shape[1] if reference and reference.classifier else 0)
    if model is not None:
        preds = [predict_series(model, series.index(slice(i, i + batch_size)), task,
                                options=options, samples=samples, steps=steps, seed=seed + i)
                 for i in range(0, b, batch_size)]
        given = torch.cat([p.given for p in preds])
        target = torch.cat([p.target for p in preds])
        if task == "change_detection":
            labels = torch.cat([p.labels for p in preds])
            results["model"] = change_scores(labels, series.labels, n_cls)
        else:
            mean = torch.cat([p.reflectance for p in preds])
            ens = torch.cat([p.samples for p in preds], dim=1)
            results["model"] = image_scores(mean, series.truth, target,
                                            samples=ens if samples > 1 else None)
    else:
        probe = make_task(series, task, standardizer=Standardizer(
            (0.0,) * series.shape[2], (1.0,) * series.shape[2], (0.0, 0.0), (1.0, 1.0)),
            n_classes=0, use_sar_channels=False,
            options=TaskOptions(drop_dates=0, horizon=options.horizon, use_sar=False),
            prior=False)
        given, target = probe.given, probe.target
        if task == "forecasting":
            target = target.clone()
            target[:, : series.shape[1] - options.horizon] = False
    if not include_baselines:
        return results
    obs = series.reflectance
    if task == "change_detection":
        if reference is None or reference.classifier is None:
            return results
        filled = linear_interpolation(obs, given, series.days)
        pred = reference.classifier.predict(filled, series.doy)
        results["centroid on linear interpolation"] = change_scores(pred, series.labels, n_cls)
        return results
    candidates: dict[str, Tensor] = {}
    if task == "forecasting":
        candidates["persistence"] = persistence(obs, given)
        if reference is not None:
            candidates["climatology"] = reference.climatology.predict(series.doy, obs.shape)
    else:
        for name, fn in BASELINES.items():
            candidates[name] = fn(obs, given, series.days)
    for name, pred in candidates.items():
        pasted = torch.where(given[:, :, None], obs, pred)
        results[name] = image_scores(pasted, series.truth, target)
    return results

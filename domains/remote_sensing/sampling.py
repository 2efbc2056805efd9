"""Sampling: ensembles of clean series from Gaussian noise, tile by tile, through sciflow.solvers.

Each member integrates the flow ODE from a draw of :data:`~.model.MATCHER`'s source with any
solver of :data:`sciflow.solvers.SOLVERS` (or FlowChef Euler steps with ``steer``, see
:mod:`.steering`); the ensemble mean is the point estimate, its spread the uncertainty, and the
class channels' votes give per-date maps. Given clear pixels are pasted back (data consistency).
Series of any size are cut into the model's windows and blended back (:mod:`.tiling`); whole
cubes go through :func:`~.cubes.apply_to_cube`, and :func:`sample` takes either.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciflow.errors import InputError
from sciflow.outputs import ensure_finite
from sciflow.progress import progress as progress_bar
from sciflow.resources import check_memory
from sciflow.solvers import SOLVERS, odeint
from sciflow.steering import flowchef

from .calibration import calibrated_std
from .config import SAMPLE_STEPS, SAMPLES, SOLVER, Config
from .data import CubeInputError, SeriesBatch, stack_series
from .model import MATCHER, Model, estimate_bytes, velocity_field
from .steering import Measurement, check_steer, make_measurement, pixel_mask
from .tasks import TaskBatch, TaskOptions, check_task, decode_state, make_task
from .tiling import TileGrid, check_overlap, pad_pixels

__all__ = ["Prediction", "sample", "predict_series", "sample_states", "flair_states",
           "ensemble_bytes", "check_solver"]


@dataclass(frozen=True)
class Prediction:
    """An ensemble prediction for a batch of series.

    reflectance (B, T, C, H, W): ensemble mean, given clear pixels pasted in.
    reflectance_std (B, T, C, H, W): the uncertainty of ``reflectance``: the calibrated std
    when the model has a calibration for the task (:mod:`.calibration`), else ``spread``; 0 on
    given pixels. spread (B, T, C, H, W): the raw ensemble standard deviation.
    samples (S, B, T, C, H, W): the members (pasted). class_probability (B, T, K, H, W): share
    of members voting each class (None without classes). labels (B, T, H, W): its argmax.
    change_probability (B, T, H, W): share of members whose label differs from the previous
    date (0 on the first date). given, target (B, T, H, W) as in :class:`~.tasks.TaskBatch`.
    """

    reflectance: Tensor
    reflectance_std: Tensor
    samples: Tensor
    class_probability: Tensor | None
    labels: Tensor | None
    change_probability: Tensor | None
    given: Tensor
    target: Tensor
    spread: Tensor | None = None


def _count(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name}={value!r}: expected an integer >= {low}")
    return value


def check_solver(solver: str, method: str | None = None) -> str:
    """``solver`` if it names one of :data:`sciflow.solvers.SOLVERS` (``method``: its old name,
    with a DeprecationWarning), else InputError listing them."""
    if method is not None:
        warnings.warn("method= is now solver= (the ODE solver)", DeprecationWarning, stacklevel=3)
        solver = method
    if solver not in SOLVERS:
        raise InputError(f"solver={solver!r}: choose from {sorted(SOLVERS)}")
    return solver


@torch.no_grad()
def sample_states(model: Model, batch: TaskBatch, *, samples: int, steps: int,
                  solver: str = SOLVER, seed: int = 0, steer: float | None = None,
                  measurement: Measurement | None = None, method: str | None = None) -> Tensor:
    """``samples`` states per tile, integrated from the matcher's source (seeded by ``seed``).

    steer=None: the plain ODE (``solver``, ``steps``). steer=eta: FlowChef Euler steps towards
    ``measurement`` (:mod:`.steering`; ``solver`` must be "euler"); the network runs without
    autograd either way, and the NFE is ``steps`` per member (dopri5 adapts). Runs on the
    model's device; the draws come from a CPU generator, so a seed gives the same noise anywhere.
    Shapes: batch.x1 (B, T, C + K, H, W) -> (S, B, T, C + K, H, W) on the CPU.
    """
    solver = check_solver(solver, method)
    _count("samples", samples)
    _count("steps", steps)
    eta = check_steer(steer)
    if eta is None and measurement is not None:
        raise InputError("a measurement is only used when steering: pass steer=eta too")
    device = model.device
    if eta is not None:
        if measurement is None:
            raise InputError("steer needs a measurement (see make_measurement)")
        if solver != "euler":
            raise InputError(f"steering (FlowChef) integrates with Euler steps, got "
                             f"solver={solver!r}; use solver='euler'")
        if measurement.y.shape != batch.x1.shape:
            raise InputError(f"the measurement has shape {tuple(measurement.y.shape)} but the "
                             f"tiles' state {tuple(batch.x1.shape)}")
        loss = measurement.to(device).loss()
    g = torch.Generator().manual_seed(seed)
    field_ = velocity_field(model)
    like = batch.x1.detach().cpu()
    cond = batch.to(device).cond
    out = []
    for _ in range(samples):
        x0 = MATCHER.source.sample(like, generator=g).to(device)
        if eta is None:
            x = odeint(field_, x0, method=solver, steps=steps, cond=cond).x
        else:
            x = flowchef(field_, x0, loss=loss, steps=steps, step_size=eta,
                         path=MATCHER.path, cond=cond).x
        out.append(x.cpu())
    return torch.stack(out)


@torch.no_grad()
def flair_states(model: Model, batch: TaskBatch, measurement: Measurement, *, samples: int,
                 steps: int, seed: int = 0, config: Any = None) -> Tensor:
    """``samples`` FLAIR estimates per tile: the measured entries fitted exactly, the rest from
    the flow prior (:func:`sciflow.flair.flair` with the operator ``Mask(measurement.mask)``).

    The inverse-problem counterpart of :func:`sample_states` with ``steer``: ``steps`` network
    evaluations per member (``config``, a :class:`sciflow.flair.FLAIRConfig`, sets the rest;
    its ``steps`` is replaced), the members differ by their noise draws (seeded by ``seed``).
    Shapes: batch.x1 (B, T, C + K, H, W) -> (S, B, T, C + K, H, W) on the CPU.
    """
    import dataclasses

    from sciflow.flair import FLAIRConfig, flair
    from sciflow.operators import Mask

    _count("samples", samples)
    _count("steps", steps)
    if not isinstance(measurement, Measurement):
        raise InputError(f"measurement must be a Measurement (make_measurement), got "
                         f"{type(measurement).__name__}")
    if measurement.y.shape != batch.x1.shape:
        raise InputError(f"the measurement has shape {tuple(measurement.y.shape)} but the "
                         f"tiles' state {tuple(batch.x1.shape)}")
    cfg = config if config is not None else FLAIRConfig()
    if not isinstance(cfg, FLAIRConfig):
        raise InputError(f"config must be a sciflow.flair.FLAIRConfig, got {type(cfg).__name__}")
    cfg = dataclasses.replace(cfg, steps=steps)
    device = model.device
    meas = measurement.to(device)
    op = Mask(meas.mask > 0)
    like = batch.x1.to(device)
    cond = batch.to(device).cond
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(samples):
        res = flair(velocity_field(model), meas.y, op, like=like, config=cfg, cond=cond,
                    source=MATCHER.source, path=MATCHER.path,
                    generator=_device_generator(device, g))
        out.append(res.x.cpu())
    return torch.stack(out)


def _device_generator(device: Any, parent: torch.Generator) -> torch.Generator:
    """A generator on ``device`` seeded from ``parent`` (FLAIR draws its noise where it runs)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=parent))
    return torch.Generator(device=device).manual_seed(seed)


def ensemble_bytes(config: Config, *, samples: int, series: int, dates: int, height: int,
                   width: int, tiles_per_batch: int = 16) -> int:
    """A rough upper bound of the memory :func:`predict_series` needs: the blended ensemble
    (S, B, T, C + K, H, W) and its copies, plus one network call on a group of tiles."""
    hp, wp = max(height, config.tile), max(width, config.tile)
    per_group = max(1, tiles_per_batch // max(series, 1))
    blended = 4 * 3 * (samples + 1) * series * dates * config.channels * hp * wp
    return blended + estimate_bytes(config, tiles=per_group * series, training=False)


def _check_masks(series: SeriesBatch, steer: float | None, measured: Tensor | None,
                 withhold: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    if measured is not None:
        if steer is None:
            raise InputError("measured pixels are only used when steering: pass steer=eta too")
        measured = pixel_mask("measured", measured, series)
        bad = measured & ~series.clear
        if bool(bad.any()):
            raise InputError(f"measured marks {int(bad.sum())} pixels that are not clear "
                             "observations of the series (cloudy or not acquired)")
    if withhold is not None:
        withhold = pixel_mask("withhold", withhold, series)
    return measured, withhold


def predict_series(model: Model, series: SeriesBatch, task: str, *,
                   options: TaskOptions | None = None, samples: int = SAMPLES,
                   steps: int = SAMPLE_STEPS, solver: str = SOLVER, seed: int = 0,
                   overlap: int | None = None, tiles_per_batch: int = 16, steer: float | None = None,
                   measured: Tensor | None = None, withhold: Tensor | None = None,
                   progress: bool | None = False, calibrate: bool = True,
                   method: str | None = None) -> Prediction:
    """Run one task on a batch of series of any size, tile by tile and window by window.

    ``options.drop_dates`` is ignored here (nothing the caller gave is hidden; remove dates
    from the series to test reconstruction, see :func:`~.data.hide_dates`). For forecasting,
    the last ``options.horizon`` dates are the ones forecast, from the ``frames`` dates before
    them at most; earlier dates are not predicted (they keep the given observations, elsewhere
    the training mean). A series without SAR runs optical-only.

    Parameters
    ----------
    samples, steps, solver, seed:
        Ensemble members, solver steps per member, the ODE solver (``method`` is its old name),
        the seed of the noise draws.
    overlap:
        Pixels of blended overlap between neighbouring tiles, in [0, tile); None:
        min(8, tile / 4).
    steer:
        None (default): the plain ODE. eta in (0, 1): FlowChef steering of every Euler step
        towards the clear reflectance of the ``measured`` pixels (:mod:`.steering`; eta = 0.5
        matches them exactly). No gradient flows through the network; NFE stays ``steps``.
    measured:
        (B, T, H, W) bool, clear pixels that form the steering measurement (only with
        ``steer``). Default: the pixels given to the model's condition.
    withhold:
        (B, T, H, W) bool, clear pixels kept out of the condition: they are predicted (part of
        ``target``, not pasted back). With ``measured=withhold`` they reach the sampler only
        through steering, the case where steering helps most.
    progress:
        Report progress over the tile groups (:func:`sciflow.progress.progress`).
    calibrate:
        ``reflectance_std`` from the model's calibration (:mod:`.calibration`; the raw spread
        when it has none for the task). False: the raw spread.

    Raises
    ------
    InputError
        A bad argument.
    ResourceError
        The ensemble would not fit in memory.
    NonFiniteError
        The flow produced NaN or inf (the message names the member and the tiles).
    """
    task = check_task(task)
    solver = check_solver(solver, method)
    for name, value in (("samples", samples), ("steps", steps),
                        ("tiles_per_batch", tiles_per_batch)):
        _count(name, value)
    steer = check_steer(steer)
    if steer is not None and solver != "euler":
        raise InputError(f"steering (FlowChef) integrates with Euler steps, got "
                         f"solver={solver!r}; use solver='euler'")
    measured, withhold = _check_masks(series, steer, measured, withhold)
    options = options if options is not None else TaskOptions()
    cfg, std = model.config, model.standardizer
    b, t, c, h, w = series.shape
    if c != len(cfg.bands):
        raise CubeInputError(f"the series has {c} bands, the model was trained on "
                             f"{len(cfg.bands)} ({list(cfg.bands)})")
    overlap = check_overlap(overlap, cfg.tile)
    if task == "change_detection" and not cfg.classes:
        raise InputError("this model was trained without land-cover classes: no change detection")
    if task == "forecasting" and not 1 <= options.horizon < t:
        raise InputError(f"forecasting needs 1 <= horizon < T = {t}, got {options.horizon}")
    use_sar = options.use_sar and not (bool(cfg.sar) and series.sar is None)
    options = TaskOptions(drop_dates=0, horizon=options.horizon, use_sar=use_sar)
    grid = TileGrid.plan(t, h, w, frames=cfg.frames, tile=cfg.tile, overlap=overlap,
                         forecast=task == "forecasting")
    per_group = max(1, tiles_per_batch // max(b, 1))
    n_ch = cfg.channels
    check_memory(ensemble_bytes(cfg, samples=samples, series=b, dates=t, height=h, width=w,
                                tiles_per_batch=tiles_per_batch),
                 f"{samples} samples of {b} series of {t} dates x {h}x{w} px", name="samples")
    acc = torch.zeros(samples, b, t, n_ch, grid.height, grid.width)
    wsum = torch.zeros(1, b, t, 1, grid.height, grid.width)
    padded = series.pad_to(grid.height, grid.width)
    pad_measured = None if measured is None else pad_pixels(measured, grid.height, grid.width)
    pad_withhold = None if withhold is None else pad_pixels(withhold, grid.height, grid.width)
    n, k = grid.t_len, grid.tile
    starts = range(0, len(grid.windows), per_group)
    bar = progress_bar(total=len(starts), desc="rs sample", unit="tile group", enabled=progress)
    for i in starts:
        group = list(grid.windows[i:i + per_group])
        parts = stack_series([padded.frames(t0, t0 + n).crop(y0, x0, k, k) for t0, y0, x0 in group])
        tb = make_task(parts, task, standardizer=std, n_classes=len(cfg.classes),
                       use_sar_channels=bool(cfg.sar), options=options, prior=cfg.prior,
                       extra_hidden=grid.cut(pad_withhold, group))
        meas = None
        if steer is not None:
            observed = grid.cut(pad_measured, group)
            meas = make_measurement(model, parts, tb.given if observed is None else observed)
        states = sample_states(model, tb, samples=samples, steps=steps, solver=solver,
                               seed=seed + i, steer=steer, measurement=meas)
        ensure_finite(states, f"remote-sensing samples of tile windows {i}-{i + len(group) - 1}",
                      axis_name="ensemble member",
                      hint="Try more --sample-steps, another --solver, or check the checkpoint")
        states = states.reshape(samples, len(group), b, n, n_ch, k, k)
        for j, (t0, y0, x0) in enumerate(group):
            acc[:, :, t0:t0 + n, :, y0:y0 + k, x0:x0 + k] += states[:, j] * grid.weight
            wsum[:, :, t0:t0 + n, :, y0:y0 + k, x0:x0 + k] += grid.weight
        bar.update(1)
    bar.close()
    covered = wsum > 0
    states = torch.where(covered, acc / wsum.clamp_min(1e-12), torch.zeros_like(acc))
    return _assemble(model, series, task, options, states[..., :h, :w], withhold, calibrate)


def _assemble(model: Model, series: SeriesBatch, task: str, options: TaskOptions,
              states: Tensor, withhold: Tensor | None, calibrate: bool = True) -> Prediction:
    """Decode blended states (S, B, T, C + K, H, W), paste the given pixels back, vote classes."""
    cfg = model.config
    b, t, c, h, w = series.shape
    n_classes = len(cfg.classes)
    refl, scores = decode_state(states, model.standardizer, c)
    full = make_task(series, task, standardizer=model.standardizer, n_classes=n_classes,
                     use_sar_channels=bool(cfg.sar), options=options, prior=False,
                     extra_hidden=withhold)
    given, target = full.given, full.target
    if task == "forecasting":
        target = target.clone()
        target[:, : t - options.horizon] = False
    pasted = torch.where(given[None, :, :, None], series.reflectance[None], refl)
    mean = pasted.mean(0)
    spread = pasted.std(0, unbiased=False) if states.shape[0] > 1 else torch.zeros_like(mean)
    std = spread
    if calibrate:
        std = calibrated_std(model, task, spread, given, series.days, warn=False)
        std = torch.where(given[:, :, None], torch.zeros_like(std), std)
    probs = labels = change = None
    if scores is not None:
        votes = scores.argmax(dim=3)  # (S, B, T, H, W)
        probs = torch.nn.functional.one_hot(votes, n_classes).float().mean(0).permute(0, 1, 4, 2, 3)
        labels = probs.argmax(dim=2)
        flips = (votes[:, :, 1:] != votes[:, :, :-1]).float().mean(0)
        change = torch.cat([torch.zeros_like(flips[:, :1]), flips], dim=1)
    return Prediction(reflectance=mean, reflectance_std=std, samples=pasted,
                      class_probability=probs, labels=labels, change_probability=change,
                      given=given, target=target, spread=spread)


def sample(model: Model, data: Any, task: str = "reconstruction", **options: Any) -> Any:
    """Run ``task`` with ``model`` on ``data``: the domain's one sampling entry point.

    ``data`` a :class:`~.data.SeriesBatch` -> a :class:`Prediction` (:func:`predict_series`);
    an xarray cube (Dataset / DataArray, eager or dask-backed) -> a cube
    (:func:`~.cubes.apply_to_cube`). ``options`` are those functions' keywords (samples, steps,
    solver, seed, overlap, steer, ...).
    """
    if isinstance(data, SeriesBatch):
        return predict_series(model, data, task, **options)
    from .cubes import apply_to_cube

    return apply_to_cube(model, data, task, **options)

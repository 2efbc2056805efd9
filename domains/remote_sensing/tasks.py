"""The four tasks as conditionings of one generative model: what it is given, what it is asked.

:func:`make_task` turns a :class:`~.data.SeriesBatch` into what the flow model sees for a task:

=================  ===========================================================================
task               condition (what the model is given)             asked for (``target``)
=================  ===========================================================================
reconstruction     clear pixels, ``drop_dates`` whole dates hidden   every pixel not given clear
cloud_removal      clear pixels + the cloudy values (flagged), SAR   every pixel not given clear
forecasting        clear pixels of all but the last ``horizon``      the last ``horizon`` dates
                   dates, SAR of the past dates
change_detection   clear pixels, SAR                                 the class map of every date
=================  ===========================================================================

The generated state x (B, T, C + K, H, W) holds the standardised cloud-free reflectance and,
when the model knows K classes, the land-cover map as 2 * one-hot - 1: one model generates both,
so change detection reads the class channels of the same sample that fills the gaps.

Per-frame condition channels: standardised optical values (zero where not given), optionally
their linear interpolation in time (a cheap prior that carries each pixel's own history to the
full-resolution head; the model learns the correction), the given-clear flag, the given-cloudy
flag, and with SAR the standardised backscatter and its availability flag. Per-frame features:
sin / cos of the day of year, the fraction of pixels given clear, whether anything was acquired.
Times: days since the window's first date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from sciflow.errors import InputError
from sciflow.nn.spacetime import SpaceTimeCondition

from .baselines import linear_interpolation
from .config import TASKS
from .data import SeriesBatch, Standardizer

__all__ = ["TASKS", "Task", "FRAME_FEATURES", "TaskOptions", "TaskBatch", "make_task",
           "decode_state", "check_task"]

Task = Literal["reconstruction", "cloud_removal", "forecasting", "change_detection"]
FRAME_FEATURES = 4
YEAR_DAYS = 365.25


@dataclass(frozen=True, kw_only=True)
class TaskOptions:
    """How tasks hide information.

    drop_dates: whole dates hidden in reconstruction. horizon: future dates in forecasting.
    use_sar: give the SAR signal where the task allows (False: optical only).
    """

    drop_dates: int = 2
    horizon: int = 3
    use_sar: bool = True

    def __post_init__(self) -> None:
        for name in ("drop_dates", "horizon"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise InputError(f"TaskOptions.{name}={v!r}: expected an integer >= 0")


@dataclass(frozen=True)
class TaskBatch:
    """What the flow model sees for one task, and what the task asks for.

    x1 (B, T, C + K, H, W): the standardised target state (the truth when known, else the
    clear observations, with ``loss_mask`` marking where it is known). cond: the
    :class:`SpaceTimeCondition`. given (B, T, H, W) bool: pixels whose clear value is given
    (pasted back into predictions). target (B, T, H, W) bool: pixels the task asks for.
    loss_mask (B, T, C + K, H, W) or None: where x1 is known (None: everywhere). task: (B,)
    task names.
    """

    x1: Tensor
    cond: SpaceTimeCondition
    given: Tensor
    target: Tensor
    loss_mask: Tensor | None
    tasks: tuple[str, ...]

    def to(self, device: torch.device | str) -> TaskBatch:
        """Move every tensor to ``device`` (what the Trainer calls on each batch)."""
        def mv(v: Tensor | None) -> Tensor | None:
            return None if v is None else v.to(device)
        return TaskBatch(mv(self.x1), self.cond.to(device), mv(self.given), mv(self.target),
                         mv(self.loss_mask), self.tasks)


def check_task(task: object) -> str:
    """``task`` if it names one of :data:`TASKS`, else InputError listing them."""
    if task not in TASKS:
        raise InputError(f"task={task!r}: unknown task; choose from {list(TASKS)}")
    return str(task)


def make_task(
    series: SeriesBatch,
    task: str | list[str] | tuple[str, ...],
    *,
    standardizer: Standardizer,
    n_classes: int,
    use_sar_channels: bool,
    options: TaskOptions | None = None,
    generator: torch.Generator | None = None,
    hide_dates: Tensor | None = None,
    extra_hidden: Tensor | None = None,
    prior: bool = True,
) -> TaskBatch:
    """Build the model input of ``task`` (one name, or one per series) for a batch of series.

    ``n_classes`` (K) and ``use_sar_channels`` must match the model (K = 0: no class channels;
    the SAR channels exist whenever the model was built with SAR, and are zero with their flag
    off when the options or the data give no SAR). ``hide_dates`` (B, T) bool overrides the
    randomly dropped dates of reconstruction; ``extra_hidden`` (B, T, H, W) bool hides further
    clear pixels (training with artificial gaps). ``prior`` adds the linear interpolation of the
    given values as C more condition channels (must match the model). Shapes as
    :class:`TaskBatch`.
    """
    options = options if options is not None else TaskOptions()
    b, t, c, h, w = series.shape
    tasks = (task,) * b if isinstance(task, str) else tuple(task)
    if len(tasks) != b:
        raise InputError(f"got {len(tasks)} task names for a batch of {b} series")
    for name in tasks:
        check_task(name)
    if len(standardizer.band_mean) != c:
        raise InputError(f"the series has {c} bands but the standardiser "
                         f"{len(standardizer.band_mean)}")
    dev = series.reflectance.device
    hidden = torch.zeros(b, t, dtype=torch.bool, device=dev)
    cloudy_visible = torch.zeros(b, dtype=torch.bool, device=dev)
    sar_ok = torch.zeros(b, t, dtype=torch.bool, device=dev)
    target_dates = torch.ones(b, t, dtype=torch.bool, device=dev)
    for i, name in enumerate(tasks):
        if name == "reconstruction":
            k = min(options.drop_dates, t - 1)
            if hide_dates is not None:
                hidden[i] = hide_dates[i]
            elif k > 0:
                hidden[i, torch.randperm(t, generator=generator)[:k].to(dev)] = True
        elif name == "cloud_removal":
            cloudy_visible[i] = True
            sar_ok[i] = options.use_sar
        elif name == "forecasting":
            k = min(options.horizon, t - 1)
            if k < 1:
                raise InputError(f"forecasting needs horizon >= 1 and T >= 2 dates, got "
                                 f"horizon={options.horizon}, T={t}")
            hidden[i, t - k:] = True
            sar_ok[i, : t - k] = options.use_sar
            target_dates[i] = False
            target_dates[i, t - k:] = True
        else:  # change_detection
            sar_ok[i] = options.use_sar
    given = series.clear & ~hidden[:, :, None, None]
    if extra_hidden is not None:
        given = given & ~extra_hidden
    cloudy = series.available & ~series.clear & ~hidden[:, :, None, None] \
        & cloudy_visible[:, None, None, None]
    shown = (given | cloudy)[:, :, None].to(series.reflectance.dtype)
    obs = standardizer.bands(series.reflectance) * shown
    parts = [obs]
    if prior:
        parts.append(_interpolation_prior(series, given, standardizer))
    parts += [given[:, :, None].float(), cloudy[:, :, None].float()]
    aux = None
    if use_sar_channels:
        if series.sar is not None and series.sar_available is not None:
            sar_given = series.sar_available & sar_ok[:, :, None, None]
            sar = standardizer.sar(series.sar) * sar_given[:, :, None]
        else:
            n_pol = len(standardizer.sar_mean)
            if n_pol == 0:
                raise InputError("the model uses SAR channels but its standardiser has no SAR "
                                 "statistics")
            sar_given = torch.zeros(b, t, h, w, dtype=torch.bool, device=dev)
            sar = torch.zeros(b, t, n_pol, h, w, device=dev)
        aux = torch.cat([sar, sar_given[:, :, None].float()], dim=2)
        parts.append(aux)
    frames = torch.cat(parts, dim=2).float()
    angle = 2 * math.pi * series.doy.float() / YEAR_DAYS
    feats = torch.stack([torch.sin(angle), torch.cos(angle),
                         given.float().mean(dim=(-2, -1)),
                         (given | cloudy).flatten(2).any(-1).float()], dim=-1)
    times = (series.days - series.days[:, :1]).float()
    cond = SpaceTimeCondition(frames=frames, times=times, frame_features=feats, aux=aux)

    # the target state: the truth when known, else the clear observations under a loss mask
    refl = series.truth if series.truth is not None else series.reflectance
    parts_x = [standardizer.bands(refl)]
    masks = [torch.ones_like(parts_x[0]) if series.truth is not None
             else series.clear[:, :, None].expand(-1, -1, c, -1, -1).float()]
    if n_classes:
        if series.labels is not None:
            onehot = torch.nn.functional.one_hot(series.labels.clamp(0, n_classes - 1),
                                                 n_classes)
            parts_x.append(2.0 * onehot.permute(0, 1, 4, 2, 3).float() - 1.0)
            masks.append(torch.ones(b, t, n_classes, h, w, device=dev))
        else:
            parts_x.append(torch.zeros(b, t, n_classes, h, w, device=dev))
            masks.append(torch.zeros(b, t, n_classes, h, w, device=dev))
    x1 = torch.cat(parts_x, dim=2).float()
    m = torch.cat(masks, dim=2)
    loss_mask = None if bool((m > 0).all()) else m
    target = ~given & target_dates[:, :, None, None]
    change = torch.tensor([n == "change_detection" for n in tasks], device=dev)
    target = torch.where(change[:, None, None, None], torch.ones_like(target), target)
    return TaskBatch(x1=x1, cond=cond, given=given, target=target, loss_mask=loss_mask,
                     tasks=tasks)


def _interpolation_prior(series: SeriesBatch, given: Tensor, standardizer: Standardizer
                         ) -> Tensor:
    """Standardised linear interpolation in time of the given values, (B, T, C, H, W).

    Each series on its own (a series with nothing given gets 0, the training mean), so the
    condition of one series never depends on the rest of the batch.
    """
    out = torch.zeros_like(series.reflectance)
    for i in torch.nonzero(given.flatten(1).any(1)).flatten().tolist():
        sl = slice(i, i + 1)
        out[sl] = standardizer.bands(linear_interpolation(series.reflectance[sl], given[sl],
                                                          series.days[sl]))
    return out


def decode_state(x: Tensor, standardizer: Standardizer, n_bands: int
                 ) -> tuple[Tensor, Tensor | None]:
    """Split a generated state (..., T, C + K, H, W) into reflectance (..., T, C, H, W) and
    class scores (..., T, K, H, W) (None when K = 0)."""
    refl = standardizer.unbands(x[..., :n_bands, :, :], dim=x.dim() - 3)
    scores = x[..., n_bands:, :, :] if x.shape[-3] > n_bands else None
    return refl, scores


"""Cubes <-> tensors, and the four tasks as conditionings of one generative model.

A cube (``sciflow.datasets.sentinel`` format: reflectance (time, band, y, x), optional cloud,
valid, sar, landcover, clear_reflectance) becomes a :class:`SeriesBatch` of tensors
(B, T, C, H, W). :func:`make_task` turns a batch into what the flow model sees for one task:

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
full-resolution head; the model learns the correction), the given-clear flag, the given-cloudy flag, and with SAR the standardised backscatter and its
availability flag. Per-frame features: sin / cos of the day of year, the fraction of pixels
given clear, whether anything was acquired. Times: days since the window's first date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from sciflow.datasets.sentinel import CubeError, class_names, validate_cube
from sciflow.nn.spacetime import SpaceTimeCondition

__all__ = [
    "TASKS",
    "Task",
    "SeriesBatch",
    "Standardizer",
    "TaskOptions",
    "TaskBatch",
    "series_from_cube",
    "stack_series",
    "make_task",
    "decode_state",
    "to_torchgeo_sample",
    "FRAME_FEATURES",
    "hide_dates",
    "tiles_from_cube",
    "CubeTiles",
]

Task = Literal["reconstruction", "cloud_removal", "forecasting", "change_detection"]
TASKS: tuple[str, ...] = ("reconstruction", "cloud_removal", "forecasting", "change_detection")
FRAME_FEATURES = 4
YEAR_DAYS = 365.25


def _map_fields(obj: Any, fn: Any) -> dict[str, Any]:
    return {f.name: None if getattr(obj, f.name) is None else fn(f.name, getattr(obj, f.name))
            for f in fields(obj)}


@dataclass(frozen=True)
class SeriesBatch:
    """A batch of image series as tensors.

    reflectance (B, T, C, H, W) float32: values as observed (clouds included), 0 where nothing
    was acquired. available (B, T, H, W) bool: something was acquired. clear (B, T, H, W) bool:
    acquired and cloud-free. days (B, T) float64: days since 1970-01-01. doy (B, T) float32.
    sar (B, T, A, H, W) float32 dB, 0 where missing; sar_available (B, T, H, W) bool.
    truth (B, T, C, H, W): cloud-free reflectance, when known. labels (B, T, H, W) int64.
    """

    reflectance: Tensor
    available: Tensor
    clear: Tensor
    days: Tensor
    doy: Tensor
    sar: Tensor | None = None
    sar_available: Tensor | None = None
    truth: Tensor | None = None
    labels: Tensor | None = None

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """(B, T, C, H, W)."""
        return tuple(self.reflectance.shape)  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> SeriesBatch:
        """Move every tensor to ``device`` (dtypes are kept)."""
        return SeriesBatch(**_map_fields(self, lambda _, v: v.to(device)))

    def index(self, rows: Tensor | slice | list[int]) -> SeriesBatch:
        """The series at ``rows`` (dim 0)."""
        return SeriesBatch(**_map_fields(self, lambda _, v: v[rows]))

    def frames(self, start: int, stop: int) -> SeriesBatch:
        """Dates ``start:stop`` of every series."""
        return SeriesBatch(**_map_fields(self, lambda _, v: v[:, start:stop]))

    def crop(self, y0: int, x0: int, height: int, width: int) -> SeriesBatch:
        """A spatial window (the last two dims of every image-like tensor)."""
        def cut(name: str, v: Tensor) -> Tensor:
            return v if name in ("days", "doy") else v[..., y0:y0 + height, x0:x0 + width]
        return SeriesBatch(**_map_fields(self, cut))

    def transform(self, rot: int, flip: bool) -> SeriesBatch:
        """Rotate by rot * 90 degrees and optionally flip x (a dihedral augmentation)."""
        def tr(name: str, v: Tensor) -> Tensor:
            if name in ("days", "doy"):
                return v
            v = torch.rot90(v, rot, dims=(-2, -1))
            return torch.flip(v, dims=(-1,)) if flip else v
        return SeriesBatch(**_map_fields(self, tr))

    def pad_to(self, height: int, width: int) -> SeriesBatch:
        """Reflect-pad the image dims up to (height, width); padded pixels count as not acquired."""
        b, t, c, h, w = self.shape
        ph, pw = height - h, width - w
        if ph < 0 or pw < 0:
            raise ValueError(f"cannot pad {h}x{w} down to {height}x{width}")
        if ph == 0 and pw == 0:
            return self
        def pad(name: str, v: Tensor) -> Tensor:
            if name in ("days", "doy"):
                return v
            if name in ("available", "clear", "sar_available"):
                return torch.nn.functional.pad(v, (0, pw, 0, ph), value=False)
            mode = "replicate" if (ph >= h or pw >= w) else "reflect"
            shape = v.shape
            flat = v.reshape(-1, 1, shape[-2], shape[-1]).to(torch.float32)
            out = torch.nn.functional.pad(flat, (0, pw, 0, ph), mode=mode)
            return out.reshape(*shape[:-2], height, width).to(v.dtype)
        return SeriesBatch(**_map_fields(self, pad))


def stack_series(items: list[SeriesBatch]) -> SeriesBatch:
    """Concatenate batches along dim 0 (all must have the same T, C, H, W and optional parts)."""
    if not items:
        raise ValueError("stack_series needs at least one batch")
    shapes = {tuple(s.shape[1:]) for s in items}
    if len(shapes) != 1:
        raise ValueError(f"series differ in (T, C, H, W): {sorted(shapes)}; crop or select "
                         "dates so they match")
    out = {}
    for f in fields(SeriesBatch):
        vals = [getattr(s, f.name) for s in items]
        if any(v is None for v in vals):
            if not all(v is None for v in vals):
                raise ValueError(f"some series have {f.name} and others do not")
            out[f.name] = None
        else:
            out[f.name] = torch.cat(vals, dim=0)
    return SeriesBatch(**out)


def series_from_cube(cube: xr.Dataset | xr.DataArray, *, bands: tuple[str, ...] | None = None,
                     sar: tuple[str, ...] | None = None, classes: tuple[str, ...] | None = None,
                     ) -> SeriesBatch:
    """Read a cube (loading it) into a batch of one series.

    ``bands`` selects and orders the optical bands (default: the cube's); a band the cube lacks
    is an error naming it. ``sar`` selects polarisations; () ignores SAR; a requested
    polarisation that is missing is an error. ``classes``: the class names a model was trained
    with; the cube's ``landcover`` must use the same names (its ``flag_meanings``).
    """
    ds = validate_cube(cube)
    have = [str(b) for b in ds["band"].values]
    bands = tuple(have) if bands is None else tuple(bands)
    missing = [b for b in bands if b not in have]
    if missing:
        raise CubeError(f"the cube lacks band(s) {missing} that the model needs (model bands "
                        f"{list(bands)}, cube bands {have}); bands are matched by name")
    refl = ds["reflectance"].sel(band=list(bands)).values.astype(np.float32)
    valid = np.isfinite(refl).all(axis=1)
    if "valid" in ds:
        valid &= ds["valid"].values.astype(bool)
    cloud = ds["cloud"].values.astype(bool) if "cloud" in ds else np.zeros_like(valid)
    clear = valid & ~cloud
    refl = np.where(valid[:, None], np.nan_to_num(refl, nan=0.0), 0.0).astype(np.float32)
    times = ds["time"].values.astype("datetime64[ns]")
    days = times.astype(np.int64).astype(np.float64) / 86_400e9
    doy = ds["doy"].values.astype(np.float32)
    out: dict[str, Any] = {
        "reflectance": torch.from_numpy(refl)[None],
        "available": torch.from_numpy(valid)[None],
        "clear": torch.from_numpy(clear)[None],
        "days": torch.from_numpy(days)[None],
        "doy": torch.from_numpy(doy)[None],
    }
    sar = tuple(sar) if sar is not None else (
        tuple(str(p) for p in ds["polarization"].values) if "sar" in ds else ())
    if sar:
        if "sar" not in ds:
            raise CubeError(f"the model uses SAR {list(sar)} but the cube has no 'sar' variable; "
                            "pass --no-sar (use_sar=False) to run optical-only")
        pols = [str(p) for p in ds["polarization"].values]
        lack = [p for p in sar if p not in pols]
        if lack:
            raise CubeError(f"the cube's sar lacks polarisation(s) {lack} (has {pols})")
        s = ds["sar"].sel(polarization=list(sar)).values.astype(np.float32)
        ok = np.isfinite(s).all(axis=1)
        out["sar"] = torch.from_numpy(np.where(ok[:, None], np.nan_to_num(s), 0.0))[None]
        out["sar_available"] = torch.from_numpy(ok)[None]
    if "clear_reflectance" in ds:
        truth = ds["clear_reflectance"].sel(band=list(bands)).values.astype(np.float32)
        out["truth"] = torch.from_numpy(truth)[None]
    if "landcover" in ds:
        names = class_names(ds)
        if classes is not None and names is not None and tuple(names) != tuple(classes):
            raise CubeError(f"the cube's land-cover classes {list(names)} differ from the "
                            f"model's {list(classes)}")
        out["labels"] = torch.from_numpy(ds["landcover"].values.astype(np.int64))[None]
    return SeriesBatch(**out)


@dataclass(frozen=True)
class Standardizer:
    """Per-band mean and standard deviation of reflectance (and of SAR dB), fitted on training data.

    z = (value - mean) / std; stored in checkpoints so inference standardises the same way.
    """

    band_mean: tuple[float, ...]
    band_std: tuple[float, ...]
    sar_mean: tuple[float, ...] = ()
    sar_std: tuple[float, ...] = ()

    @classmethod
    def fit(cls, series: SeriesBatch) -> Standardizer:
        """From the truth when present, else from the clear observations."""
        if series.truth is not None:
            v = series.truth.movedim(2, 0).reshape(series.shape[2], -1)
        else:
            m = series.clear[:, :, None].expand_as(series.reflectance)
            if not bool(m.any()):
                raise ValueError("no clear pixel in the training data: cannot standardise")
            v = series.reflectance.movedim(2, 0)[m.movedim(2, 0)].reshape(series.shape[2], -1)
        mean, std = v.double().mean(1), v.double().std(1).clamp_min(1e-4)
        sm: tuple[float, ...] = ()
        ss: tuple[float, ...] = ()
        if series.sar is not None:
            ok = series.sar_available[:, :, None].expand_as(series.sar)
            s = series.sar.movedim(2, 0)[ok.movedim(2, 0)].reshape(series.sar.shape[2], -1)
            sm = tuple(float(x) for x in s.double().mean(1))
            ss = tuple(float(x) for x in s.double().std(1).clamp_min(1e-3))
        return cls(tuple(float(x) for x in mean), tuple(float(x) for x in std), sm, ss)

    def _vec(self, values: tuple[float, ...], like: Tensor, dim: int) -> Tensor:
        shape = [1] * like.dim()
        shape[dim] = len(values)
        return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(shape)

    def bands(self, x: Tensor, *, dim: int = 2) -> Tensor:
        return (x - self._vec(self.band_mean, x, dim)) / self._vec(self.band_std, x, dim)

    def unbands(self, z: Tensor, *, dim: int = 2) -> Tensor:
        return z * self._vec(self.band_std, z, dim) + self._vec(self.band_mean, z, dim)

    def sar(self, x: Tensor, *, dim: int = 2) -> Tensor:
        return (x - self._vec(self.sar_mean, x, dim)) / self._vec(self.sar_std, x, dim)

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        return cls(**{k: tuple(float(x) for x in v) for k, v in d.items()})


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
                raise ValueError(f"TaskOptions.{name} must be an integer >= 0, got {v!r}")


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


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")


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
        raise ValueError(f"got {len(tasks)} task names for a batch of {b} series")
    for name in tasks:
        _check_task(name)
    if len(standardizer.band_mean) != c:
        raise ValueError(f"the series has {c} bands but the standardiser {len(standardizer.band_mean)}")
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
                raise ValueError(f"forecasting needs horizon >= 1 and T >= 2 dates, got "
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
                raise ValueError("the model uses SAR channels but its standardiser has no SAR "
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
    from sciflow.domains.remote_sensing.baselines import linear_interpolation

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


def to_torchgeo_sample(cube: xr.Dataset | xr.DataArray, *, bands: tuple[str, ...] | None = None
                       ) -> dict[str, Any]:
    """A torchgeo-style sample of a whole cube: a dict with

    ``image`` (T, C, H, W) float32 reflectance, ``mask`` (T, H, W) bool clear pixels,
    ``crs`` (str or None), ``bounds`` (minx, maxx, miny, maxy, mint, maxt) as torchgeo's
    BoundingBox orders them (times as POSIX seconds), ``dates`` (T,) datetime64 strings, and when
    present ``sar`` (T, A, H, W) and ``landcover`` (T, H, W) int64.
    """
    from sciflow.datasets.sentinel import cube_crs

    ds = validate_cube(cube)
    s = series_from_cube(ds, bands=bands)
    x, y = ds["x"].values, ds["y"].values
    dx = float(abs(x[1] - x[0])) if len(x) > 1 else 0.0
    dy = float(abs(y[1] - y[0])) if len(y) > 1 else 0.0
    secs = ds["time"].values.astype("datetime64[s]").astype(np.int64)
    sample: dict[str, Any] = {
        "image": s.reflectance[0],
        "mask": s.clear[0],
        "crs": cube_crs(ds),
        "bounds": (float(x.min()) - dx / 2, float(x.max()) + dx / 2,
                   float(y.min()) - dy / 2, float(y.max()) + dy / 2,
                   float(secs.min()), float(secs.max())),
        "dates": [str(d) for d in ds["time"].values.astype("datetime64[D]")],
    }
    if s.sar is not None:
        sample["sar"] = s.sar[0]
    if s.labels is not None:
        sample["landcover"] = s.labels[0]
    return sample


def hide_dates(series: SeriesBatch, n: int, *, generator: torch.Generator | None = None
               ) -> tuple[SeriesBatch, Tensor]:
    """Remove ``n`` random whole dates per series from the observations (truth kept).

    Returns the series with those dates not acquired (optical and SAR) and the hidden (B, T)
    mask; how evaluation sets up reconstruction of missing dates.
    """
    b, t = series.shape[:2]
    if not 0 <= n < t:
        raise ValueError(f"can hide 0 to T - 1 = {t - 1} dates, got n={n}")
    hidden = torch.zeros(b, t, dtype=torch.bool)
    for i in range(b):
        hidden[i, torch.randperm(t, generator=generator)[:n]] = True
    hidden = hidden.to(series.reflectance.device)
    keep = ~hidden[:, :, None, None]
    return SeriesBatch(
        reflectance=series.reflectance * keep[:, :, None].to(series.reflectance.dtype),
        available=series.available & keep, clear=series.clear & keep,
        days=series.days, doy=series.doy, sar=series.sar,
        sar_available=None if series.sar_available is None else series.sar_available & keep,
        truth=series.truth, labels=series.labels), hidden


def tiles_from_cube(cube: xr.Dataset, *, tile: int, frames: int,
                    bands: tuple[str, ...] | None = None, sar: tuple[str, ...] | None = None,
                    classes: tuple[str, ...] | None = None) -> SeriesBatch:
    """Cut a cube into non-overlapping tile x tile windows of ``frames`` consecutive dates
    (a training set from one large cube). Edges that do not fill a tile are dropped; a cube
    smaller than a tile is reflect-padded to one."""
    s = series_from_cube(cube, bands=bands, sar=sar, classes=classes)
    _, t, _, h, w = s.shape
    if h < tile or w < tile:
        s = s.pad_to(max(h, tile), max(w, tile))
        h, w = max(h, tile), max(w, tile)
    if t < frames:
        raise CubeError(f"the cube has {t} dates but the model works on windows of {frames}")
    parts = []
    for t0 in range(0, t - frames + 1, frames):
        for y0 in range(0, h - tile + 1, tile):
            for x0 in range(0, w - tile + 1, tile):
                parts.append(s.frames(t0, t0 + frames).crop(y0, x0, tile, tile))
    return stack_series(parts)


class CubeTiles(torch.utils.data.Dataset):
    """A map-style torch Dataset of torchgeo-style samples, one per spatial tile of a cube.

    Tiles are ``tile`` x ``tile`` px windows on a grid of step ``stride`` (default: ``tile``);
    edges that do not fill a tile are dropped. Each item is :func:`to_torchgeo_sample` of the
    window, read on demand, so a lazy (dask-backed) cube is loaded one tile at a time.
    """

    def __init__(self, cube: xr.Dataset, *, tile: int, stride: int | None = None,
                 bands: tuple[str, ...] | None = None) -> None:
        self.cube = validate_cube(cube)
        stride = tile if stride is None else stride
        if tile < 1 or stride < 1:
            raise ValueError(f"tile and stride must be >= 1, got {tile} and {stride}")
        h, w = self.cube.sizes["y"], self.cube.sizes["x"]
        if h < tile or w < tile:
            raise CubeError(f"the cube ({h}x{w} px) is smaller than one tile ({tile} px)")
        self.tile, self.bands = tile, bands
        self.origins = [(y, x) for y in range(0, h - tile + 1, stride)
                        for x in range(0, w - tile + 1, stride)]

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> dict[str, Any]:
        y, x = self.origins[i]
        window = self.cube.isel(y=slice(y, y + self.tile), x=slice(x, x + self.tile))
        return to_torchgeo_sample(window, bands=self.bands)

"""Cubes <-> tensors, with every check of what a cube holds before any work is done on it.

A cube (``sciflow.datasets.sentinel`` format: reflectance (time, band, y, x), optional cloud,
valid, sar, landcover, clear_reflectance) becomes a :class:`SeriesBatch` of tensors
(B, T, C, H, W); :class:`Standardizer` scales its values for the network, and
:func:`tiles_from_cube` cuts large cubes into training tiles. What the model is given and
asked for per task lives in :mod:`.tasks`; torchgeo-style samples in :mod:`.torchgeo`.

Errors: a cube that cannot be used as asked (a missing band, no finite reflectance, nothing
clear to fill from) is a :class:`CubeInputError`, both a :class:`sciflow.errors.InputError` and
a :class:`sciflow.datasets.sentinel.CubeError`; its message names the variable and the fix.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from sciflow.datasets.sentinel import CubeError, class_codes, class_names, validate_cube
from sciflow.errors import InputError

__all__ = [
    "CubeInputError",
    "check_cube",
    "check_bands",
    "check_observations",
    "SeriesBatch",
    "Standardizer",
    "series_from_cube",
    "stack_series",
    "hide_dates",
    "tiles_from_cube",
]

# names that moved out; ``from .data import make_task`` (sciflow 0.1) keeps working
_MOVED = {"TASKS": ".tasks", "Task": ".tasks", "FRAME_FEATURES": ".tasks",
          "TaskOptions": ".tasks", "TaskBatch": ".tasks", "make_task": ".tasks",
          "decode_state": ".tasks", "to_torchgeo_sample": ".torchgeo", "CubeTiles": ".torchgeo"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CubeInputError(InputError, CubeError):
    """A cube that cannot be used as asked; the message names the variable and the fix."""


def check_cube(cube: xr.Dataset | xr.DataArray, *, what: str = "the cube") -> xr.Dataset:
    """:func:`~sciflow.datasets.sentinel.validate_cube`, its CubeError raised as a
    :class:`CubeInputError` that starts with ``what`` (e.g. the file name)."""
    try:
        return validate_cube(cube)
    except CubeError as err:
        if isinstance(err, InputError):
            raise
        raise CubeInputError(f"{what}: {err}") from None


def check_bands(cube: xr.Dataset, bands: tuple[str, ...] | None) -> tuple[str, ...]:
    """``bands`` (default: the cube's), after checking the cube has each of them by name."""
    have = [str(b) for b in cube["band"].values]
    bands = tuple(have) if bands is None else tuple(bands)
    missing = [b for b in bands if b not in have]
    if missing:
        raise CubeInputError(f"the cube lacks band(s) {missing} that the model needs (model bands "
                             f"{list(bands)}, cube bands {have}); bands are matched by name")
    return bands


def check_observations(cube: xr.Dataset, *, bands: tuple[str, ...] | None = None,
                       need_clear: bool = True, what: str = "the cube") -> None:
    """Refuse a cube with nothing to work from, before any work is done on it.

    Raises :class:`CubeInputError` when ``reflectance`` (over ``bands``, default all) holds no
    finite value on an acquired pixel (``valid``), or, with ``need_clear``, when no such pixel is
    clear (``cloud`` false): reconstruction, forecasting, change detection and training all start
    from clear pixels, cloud removal also reads cloudy ones. A dask-backed cube is reduced block
    by block (one read), never loaded whole.
    """
    refl = cube["reflectance"]
    if bands is not None:
        refl = refl.sel(band=list(bands))
    acquired = np.isfinite(refl).all("band")
    if "valid" in cube:
        acquired = acquired & cube["valid"].astype(bool)
    clear = acquired & ~cube["cloud"].astype(bool) if "cloud" in cube else acquired
    found = xr.Dataset({"acquired": acquired.any(), "clear": clear.any()})
    found = found.compute(scheduler="synchronous")  # one block at a time, one file reader
    if not bool(found["acquired"]):
        raise CubeInputError(f"{what}: 'reflectance' holds no finite value on an acquired pixel "
                             "(all NaN, or every pixel flagged invalid by 'valid'); there is "
                             "nothing to work from. Check the file and its band names")
    if need_clear and not bool(found["clear"]):
        raise CubeInputError(f"{what}: every acquired pixel of 'reflectance' is flagged cloudy by "
                             "'cloud', so there is no clear observation to start from; use "
                             "cloud removal (sciflow rs fill --mode cloud-removal), which also "
                             "reads the cloudy values")


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
            raise InputError(f"cannot pad {h}x{w} down to {height}x{width}")
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
        raise InputError("stack_series needs at least one batch")
    shapes = {tuple(s.shape[1:]) for s in items}
    if len(shapes) != 1:
        raise InputError(f"series differ in (T, C, H, W): {sorted(shapes)}; crop or select "
                         "dates so they match")
    out = {}
    for f in fields(SeriesBatch):
        vals = [getattr(s, f.name) for s in items]
        if any(v is None for v in vals):
            if not all(v is None for v in vals):
                raise InputError(f"some series have {f.name} and others do not")
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
    ds = check_cube(cube)
    bands = check_bands(ds, bands)
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
            raise CubeInputError(f"the model uses SAR {list(sar)} but the cube has no 'sar' "
                                 "variable; pass --no-sar (use_sar=False) to run optical-only")
        pols = [str(p) for p in ds["polarization"].values]
        lack = [p for p in sar if p not in pols]
        if lack:
            raise CubeInputError(f"the cube's sar lacks polarisation(s) {lack} (has {pols})")
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
            raise CubeInputError(f"the cube's land-cover classes {list(names)} differ from the "
                                 f"model's {list(classes)}")
        out["labels"] = torch.from_numpy(_class_indices(ds))[None]
    return SeriesBatch(**out)


def _class_indices(ds: xr.Dataset) -> np.ndarray:
    """The cube's landcover as class indices 0..K-1: its CF ``flag_values`` (e.g. ESA
    WorldCover's 10, 20, ...) looked up, or the values themselves when it has none."""
    values = ds["landcover"].values.astype(np.int64)
    codes = class_codes(ds)
    if codes is None or codes == tuple(range(len(codes))):
        return values
    table = {c: i for i, c in enumerate(codes)}
    unknown = sorted(set(np.unique(values).tolist()) - set(table))
    if unknown:
        raise CubeInputError(f"landcover holds value(s) {unknown[:10]} that are not among its "
                             f"flag_values {list(codes)}; add them to flag_values / "
                             "flag_meanings or mask them")
    lookup = np.zeros(max(codes) + 1, dtype=np.int64)
    for code, index in table.items():
        lookup[code] = index
    return lookup[values]


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
                raise InputError("no clear pixel in the training data: cannot standardise")
            v = series.reflectance.movedim(2, 0)[m.movedim(2, 0)].reshape(series.shape[2], -1)
        mean, std = v.double().mean(1), v.double().std(1).clamp_min(1e-4)
        sm: tuple[float, ...] = ()
        ss: tuple[float, ...] = ()
        if series.sar is not None:
            ok = series.sar_available[:, :, None].expand_as(series.sar)
            if not bool(ok.any()):
                raise CubeInputError("the training data's 'sar' holds no finite value; train "
                                     "optical-only (Config(sar=()), sciflow rs train --no-sar)")
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



def hide_dates(series: SeriesBatch, n: int, *, generator: torch.Generator | None = None
               ) -> tuple[SeriesBatch, Tensor]:
    """Remove ``n`` random whole dates per series from the observations (truth kept).

    Returns the series with those dates not acquired (optical and SAR) and the hidden (B, T)
    mask; how evaluation sets up reconstruction of missing dates.
    """
    b, t = series.shape[:2]
    if not 0 <= n < t:
        raise InputError(f"can hide 0 to T - 1 = {t - 1} dates, got n={n}")
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
        raise CubeInputError(f"the cube has {t} dates but the model works on windows of "
                             f"{frames} dates; lower frames (--frames) or use longer series")
    parts = []
    for t0 in range(0, t - frames + 1, frames):
        for y0 in range(0, h - tile + 1, tile):
            for x0 in range(0, w - tile + 1, tile):
                parts.append(s.frames(t0, t0 + frames).crop(y0, x0, tile, tile))
    return stack_series(parts)

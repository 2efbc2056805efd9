"""torchgeo-style access to cubes: one sample dict per cube, a map-style Dataset of its tiles.

torchgeo's raster datasets yield dicts with ``image``, ``mask``, ``crs`` and ``bounds``; these
helpers give a cube the same face, so a torchgeo ``DataLoader`` pipeline (samplers, transforms)
can read sciflow cubes without a GeoTIFF round trip. torchgeo itself is not needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from sciflow.errors import InputError

from .data import CubeInputError, check_cube, series_from_cube

__all__ = ["to_torchgeo_sample", "CubeTiles"]


def to_torchgeo_sample(cube: xr.Dataset | xr.DataArray, *, bands: tuple[str, ...] | None = None
                       ) -> dict[str, Any]:
    """A torchgeo-style sample of a whole cube: a dict with

    ``image`` (T, C, H, W) float32 reflectance, ``mask`` (T, H, W) bool clear pixels,
    ``crs`` (str or None), ``bounds`` (minx, maxx, miny, maxy, mint, maxt) as torchgeo's
    BoundingBox orders them (times as POSIX seconds), ``dates`` (T,) datetime64 strings, and when
    present ``sar`` (T, A, H, W) and ``landcover`` (T, H, W) int64.
    """
    from sciflow.datasets.sentinel import cube_crs

    ds = check_cube(cube)
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


class CubeTiles(torch.utils.data.Dataset):
    """A map-style torch Dataset of torchgeo-style samples, one per spatial tile of a cube.

    Tiles are ``tile`` x ``tile`` px windows on a grid of step ``stride`` (default: ``tile``);
    edges that do not fill a tile are dropped. Each item is :func:`to_torchgeo_sample` of the
    window, read on demand, so a lazy (dask-backed) cube is loaded one tile at a time.
    """

    def __init__(self, cube: xr.Dataset, *, tile: int, stride: int | None = None,
                 bands: tuple[str, ...] | None = None) -> None:
        self.cube = check_cube(cube)
        stride = tile if stride is None else stride
        if tile < 1 or stride < 1:
            raise InputError(f"tile and stride must be >= 1, got {tile} and {stride}")
        h, w = self.cube.sizes["y"], self.cube.sizes["x"]
        if h < tile or w < tile:
            raise CubeInputError(f"the cube ({h}x{w} px) is smaller than one tile ({tile} px)")
        self.tile, self.bands = tile, bands
        self.origins = [(y, x) for y in range(0, h - tile + 1, stride)
                        for x in range(0, w - tile + 1, stride)]

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> dict[str, Any]:
        y, x = self.origins[i]
        window = self.cube.isel(y=slice(y, y + self.tile), x=slice(x, x + self.tile))
        return to_torchgeo_sample(window, bands=self.bands)

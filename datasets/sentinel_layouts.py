"""The cube layouts users already have, read as the (time, band, y, x) cube of :mod:`.sentinel`.

:func:`to_cube_layout` (called by :func:`~sciflow.datasets.sentinel.validate_cube`, so by every
sciflow reader) turns these into a Dataset with one ``reflectance`` variable:

=======================================  ================================================
what comes in                            how it is read
=======================================  ================================================
a Dataset with ``reflectance``           as it is (the native layout)
one variable per band, each (time, y,    odc-stac's ``odc.stac.load(items, bands=[...])``:
x), e.g. ``B02, B03, ...`` or ``blue,    the band variables are stacked along a new
green, red, nir, ...``                   ``band`` dimension, in the order they appear
a DataArray (time, band, y, x) with a    stackstac's ``stackstac.stack(items)`` (and any bare
``band`` coordinate of names             DataArray): read as ``reflectance``
a band or variable named ``scl`` /       the Sentinel-2 Scene Classification Layer: it
``SCL``                                  becomes the ``cloud`` and ``valid`` masks (below),
                                         never a reflectance band
=======================================  ================================================

Band names. Sentinel-2 band ids are written two-digit (``B2``, ``b02`` -> ``B02``; ``B8A``);
STAC ``eo:common_name`` s become the Sentinel-2 id they name, the original name kept in a
``common_name`` band coordinate: coastal B01, blue B02, green B03, red B04, rededge1 B05,
rededge2 B06, rededge3 B07, nir B08, nir08 B8A, nir09 B09, cirrus B10, swir16 B11, swir22 B12.
Other names are kept as they are (a model matches bands by name).

Values. Integer bands are digital numbers: a band's ``nodata`` attribute (odc-stac writes it)
marks pixels not acquired (they become NaN), the rest are divided by 10,000 (the Sentinel-2
L2A scale; with a warning). Float bands are taken as reflectance (stackstac rescales by default).
Collections that store DN + 1,000 (processing baseline 04.00 and later, e.g. Earth Search's
``sentinel-2-l2a``) need their offset applied first: ``(ds - 1000) / 10000``.

SCL. ``cloud`` = SCL in {3 cloud shadow, 8 cloud medium probability, 9 cloud high probability,
10 thin cirrus}; ``valid`` = SCL not in {0 no data, 1 saturated or defective}. A cube's own
``cloud`` / ``valid`` variables take precedence.

stackstac's attributes. ``crs`` (e.g. "epsg:32633") and ``transform`` (an affine.Affine) become
a rioxarray-style ``spatial_ref`` coordinate (``spatial_ref`` + ``GeoTransform`` attributes);
``resolution`` is kept; attributes and coordinates a netCDF / zarr file cannot hold (stackstac's
``spec`` object, per-item lists and dicts in coordinates) are dropped, strings with missing
entries become "" .
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["COMMON_NAMES", "SCL_CLOUD", "SCL_INVALID", "band_id", "to_cube_layout",
           "netcdf_safe_attrs"]

#: STAC eo:common_name -> Sentinel-2 band id
COMMON_NAMES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12",
}
#: Scene Classification Layer classes read as cloud / not acquired
SCL_CLOUD: tuple[int, ...] = (3, 8, 9, 10)
SCL_INVALID: tuple[int, ...] = (0, 1)
_SCL = ("scl", "SCL")
_S2_ID = re.compile(r"^[bB]0?(1[0-2]|[1-9]|8[aA])$")


def band_id(name: object) -> str | None:
    """The Sentinel-2 band id a variable or band name stands for ("b2" -> "B02", "red" ->
    "B04", "B8A" -> "B8A"), or None when it names no Sentinel-2 band."""
    text = str(name).strip()
    m = _S2_ID.match(text)
    if m:
        tail = m.group(1).upper()
        return "B8A" if tail == "8A" else f"B{int(tail):02d}"
    return COMMON_NAMES.get(text.lower())


def _safe_value(value: Any) -> Any:
    """``value`` as something netCDF and zarr attributes hold, or None if it cannot be."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.ndim <= 1:
        return value
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_)) for v in value):
        return np.asarray(value)
    return None


def netcdf_safe_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes a netCDF / zarr file can store (strings, numbers, 1-D numeric arrays)."""
    out = {}
    for key, value in attrs.items():
        safe = _safe_value(value)
        if safe is not None:
            out[str(key)] = safe
    return out


def _safe_coord(coord: xr.DataArray) -> xr.DataArray | None:
    """A coordinate a file can hold: object arrays of strings (None -> "") become str arrays;
    object arrays of anything else (lists, dicts) are dropped (None)."""
    if coord.dtype != object:
        return coord
    values = coord.values.ravel()
    if all(v is None or isinstance(v, str) for v in values):
        text = np.array(["" if v is None else v for v in values], dtype=str)
        return coord.copy(data=text.reshape(coord.shape))
    if all(isinstance(v, (int, float, np.integer, np.floating)) or v is None for v in values):
        num = np.array([np.nan if v is None else float(v) for v in values])
        return coord.copy(data=num.reshape(coord.shape))
    return None


def _dn_to_reflectance(da: xr.DataArray, what: str) -> xr.DataArray:
    """Integer digital numbers -> reflectance (nodata -> NaN); floats unchanged."""
    if not np.issubdtype(da.dtype, np.integer):
        return da
    nodata = da.attrs.get("nodata", da.attrs.get("_FillValue"))
    attrs = {k: v for k, v in da.attrs.items() if k not in ("nodata", "_FillValue")}
    masked = da.where(da != nodata) if nodata is not None else da
    warnings.warn(f"{what}: integer values read as digital numbers / 10000 (the Sentinel-2 L2A "
                  "scale)" + (f", {nodata} as not acquired" if nodata is not None else ""),
                  stacklevel=4)
    out = (masked / 10_000.0).astype(np.float32)
    out.attrs = attrs
    return out


def _scl_masks(scl: xr.DataArray) -> dict[str, xr.DataArray]:
    codes = scl.fillna(0) if np.issubdtype(scl.dtype, np.floating) else scl
    cloud = codes.isin(list(SCL_CLOUD))
    valid = ~codes.isin(list(SCL_INVALID))
    cloud.attrs = {"long_name": "cloud or cloud shadow (from SCL classes 3, 8, 9, 10)"}
    valid.attrs = {"long_name": "data acquired (SCL class not 0 or 1)"}
    return {"cloud": cloud.drop_vars("band", errors="ignore"),
            "valid": valid.drop_vars("band", errors="ignore")}


def _rename_bands(reflectance: xr.DataArray) -> xr.DataArray:
    names = [str(b) for b in reflectance["band"].values]
    ids = [band_id(b) or b for b in names]
    out = reflectance.assign_coords(band=ids)
    if ids != names and "common_name" not in out.coords:
        common = [n if n.lower() in COMMON_NAMES else "" for n in names]
        if any(common):
            out = out.assign_coords(common_name=("band", common))
    return out


def _stackstac_crs(da: xr.DataArray) -> xr.DataArray:
    """stackstac's ``crs`` / ``transform`` attributes as a rioxarray-style spatial_ref."""
    crs = da.attrs.get("crs")
    if crs is None or "spatial_ref" in da.coords:
        return da
    attrs: dict[str, Any] = {"spatial_ref": str(crs)}
    transform = da.attrs.get("transform")
    if transform is not None and len(tuple(transform)) >= 6:
        a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
        attrs["GeoTransform"] = " ".join(repr(v) for v in (c, a, b, f, d, e))
    if str(crs).lstrip().upper().startswith(("PROJCS", "GEOGCS", "PROJCRS", "GEOGCRS")):
        attrs["crs_wkt"] = str(crs)
    out = da.assign_coords(spatial_ref=xr.DataArray(np.int64(0), attrs=attrs))
    out.attrs = {k: v for k, v in da.attrs.items() if k not in ("crs", "transform")}
    out.attrs["grid_mapping"] = "spatial_ref"
    return out


def _from_dataarray(da: xr.DataArray) -> xr.Dataset:
    """A bare or stackstac DataArray (time, band, y, x) -> a cube Dataset."""
    da = _stackstac_crs(da)
    keep = {}
    for name, coord in da.coords.items():
        if name in da.dims:
            continue
        safe = _safe_coord(coord)
        if safe is not None:  # the variable alone: a coordinate's DataArray carries the others
            keep[name] = safe.variable
    da = da.drop_vars([c for c in da.coords if c not in da.dims]).assign_coords(keep)
    da.attrs = netcdf_safe_attrs(da.attrs)
    masks: dict[str, xr.DataArray] = {}
    if "band" in da.dims and "band" in da.coords:
        names = [str(b) for b in da["band"].values]
        scl = [b for b in names if b in _SCL]
        if scl:
            masks = _scl_masks(da.sel(band=scl[0]))
            da = da.sel(band=[b for b in names if b not in _SCL])
        da = _rename_bands(_dn_to_reflectance(da, "reflectance"))
    return da.to_dataset(name="reflectance").assign(masks)


def _band_variables(ds: xr.Dataset) -> list[str]:
    return [str(n) for n, v in ds.data_vars.items()
            if band_id(n) is not None and set(v.dims) == {"time", "y", "x"}]


def _from_band_variables(ds: xr.Dataset, names: list[str]) -> xr.Dataset:
    """One (time, y, x) variable per band (odc-stac) -> ``reflectance`` (time, band, y, x)."""
    bands = [_dn_to_reflectance(ds[n], f"band {n!r}") for n in names]
    common = dict(bands[0].attrs)
    for b in bands[1:]:
        common = {k: v for k, v in common.items()
                  if k in b.attrs and np.array_equal(np.asarray(b.attrs[k]), np.asarray(v))}
    grid = next((ds[n].attrs.get("grid_mapping") or ds[n].encoding.get("grid_mapping")
                 for n in names if ds[n].attrs.get("grid_mapping")
                 or ds[n].encoding.get("grid_mapping")), None)
    refl = xr.concat([b.drop_attrs() for b in bands], dim="band", coords="minimal",
                     compat="override", join="exact")
    refl = refl.assign_coords(band=names).transpose("time", "band", "y", "x")
    refl.attrs = common
    if grid is not None:
        refl.attrs["grid_mapping"] = grid
    out = ds.drop_vars(names).assign(reflectance=_rename_bands(refl))
    return out


def to_cube_layout(cube: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """Read any layout of the module docstring as a Dataset with ``reflectance`` (time, band,
    y, x) and, from an SCL, ``cloud`` / ``valid``. Lazy (dask) arrays stay lazy; the input is
    not changed. Anything else is returned unchanged for :func:`validate_cube` to judge."""
    if isinstance(cube, xr.DataArray):
        return _from_dataarray(cube)
    if not isinstance(cube, xr.Dataset):
        return cube
    ds = cube
    if "reflectance" not in ds:
        names = _band_variables(ds)
        if names:
            ds = _from_band_variables(ds, names)
    scl = next((n for n in _SCL if n in ds.data_vars), None)
    if scl is not None:
        masks = {k: v for k, v in _scl_masks(ds[scl]).items() if k not in ds}
        ds = ds.drop_vars(scl).assign(masks)
    return ds

"""What an output cube keeps of its input and says about itself: CF conventions and provenance.

:func:`carry_metadata` gives a result cube

* every global attribute of the input (``title``, ``institution``, ``Conventions``, ...; "CF-1.8"
  when it had none), a CF ``history`` line appended to the input's ("<UTC time> sciflow
  <version>: <command>", :func:`sciflow.provenance.history_line`), and the run as
  ``sciflow_*`` attributes (:func:`provenance`: versions, time, checkpoint and the sha256 of
  its tensors, task, seed, sampler, solver, steps, samples, what ``reflectance_std`` means);
* the coordinates' attributes (``x`` / ``y`` ``standard_name``, ``units``, ...), and the
  input's other coordinates where they still apply (per band, per pixel; per date except for
  forecast dates);
* the CF grid mapping(s) of the input, stored the way they were: a coordinate (rioxarray's
  ``spatial_ref``) stays a coordinate, a data variable (a CF ``crs`` variable with
  ``grid_mapping_name``) stays a data variable; every output variable names it in
  ``grid_mapping``;
* variable attributes: ``reflectance`` keeps all of the input reflectance's (``units``,
  ``long_name``, ``standard_name``, ...); ``reflectance_std`` has its units and the CF
  ``standard_error`` modifier; ``landcover`` keeps the input's flag metadata (class codes
  such as ESA WorldCover's 10, 20, ... included); each flag has its own ``flag_values`` /
  ``flag_meanings`` (``filled``: observed_clear / predicted; ``change``: no_change / change).

Attributes are made storable in netCDF and zarr (no None, no Python objects, booleans as
"yes" / "no").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import sciflow
from sciflow.datasets.sentinel import grid_mappings
from sciflow.datasets.sentinel_layouts import netcdf_safe_attrs
from sciflow.provenance import history_line
from sciflow.provenance import provenance as core_provenance

__all__ = ["provenance", "carry_metadata", "FLAGS", "PREFIX"]

PREFIX = "sciflow_"

#: the flag variables: (flag_values, flag_meanings, long_name)
FLAGS: dict[str, tuple[tuple[int, ...], str, str]] = {
    "filled": ((0, 1), "observed_clear predicted",
               "pixel predicted by the model (0: its clear observation is kept)"),
    "change": ((0, 1), "no_change change",
               "land-cover class differs from the previous date"),
}

#: attributes that describe a file's encoding of the input, not the values sciflow writes
_ENCODING_ATTRS = ("grid_mapping", "coordinates", "scale_factor", "add_offset", "_FillValue",
                   "missing_value", "nodata", "dtype", "_Unsigned")

_DESCRIPTIONS = {
    "reflectance": "cloud-free surface reflectance: clear observations kept, every other pixel "
                   "the ensemble mean of the flow model",
    "class_probability": "share of ensemble members voting for each class",
    "change_probability": "share of ensemble members whose class differs from the previous date",
}


def provenance(*, task: str, checkpoint: str | None, digest: str | None, seed: int,
               solver: str, steps: int, samples: int, overlap: int, use_sar: bool,
               steer: float | None, uncertainty: str) -> dict[str, Any]:
    """The run as ``sciflow_*`` attributes: :func:`sciflow.provenance.provenance`'s record
    (versions, time, command line, host, checkpoint and the sha256 of its tensors) plus the
    sampling settings and what ``reflectance_std`` means; netCDF-storable (no None, no
    booleans)."""
    record = core_provenance(
        checkpoint=checkpoint or "(in memory, not saved)",
        digest=digest or "(none: not saved, or a file without a digest)",
        task=task, seed=int(seed), seed_means="seeds the Gaussian source draws of the members",
        sampler=f"flow ODE, {solver}" + ("" if steer is None else f" with FlowChef steering "
                                         f"(step size {steer})"),
        solver=solver, sample_steps=int(steps) if solver != "dopri5" else "adaptive (dopri5)",
        samples=int(samples), overlap_px=int(overlap), use_sar="yes" if use_sar else "no",
        steer="off" if steer is None else float(steer), uncertainty=uncertainty)
    return {PREFIX + ("version" if k == "sciflow" else k): v for k, v in record.items()
            if v is not None and v != ""}


def _grid_text(var: xr.DataArray) -> str | None:
    text = var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")
    return None if text is None else str(text)


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    return netcdf_safe_attrs({k: v for k, v in attrs.items() if k not in _ENCODING_ATTRS})


def _coords(out: xr.Dataset, cube: xr.Dataset, *, same_times: bool) -> xr.Dataset:
    """Coordinate attributes, and the input's other coordinates where they apply."""
    for name in ("time", "y", "x", "band"):
        if name in out.coords and name in cube.coords:
            out[name].attrs.update(_clean(cube[name].attrs))
    extra = {}
    for name, coord in cube.coords.items():
        if name in out.coords or name in cube.dims or name == "doy" or name in grid_mappings(cube):
            continue
        dims = set(coord.dims)
        if not dims <= set(out.dims) or ("time" in dims and not same_times):
            continue
        if "band" in dims:
            if "band" not in out.coords:
                continue
            coord = coord.sel(band=list(out["band"].values))
        extra[name] = coord.variable.copy(deep=False)
    return out.assign_coords(extra)


def _grid_mapping(out: xr.Dataset, cube: xr.Dataset) -> xr.Dataset:
    """The input's grid-mapping variable(s), as coordinate or data variable as they were."""
    names = grid_mappings(cube)
    if not names:
        return out
    for name in names:
        var = cube[name].load().variable.copy(deep=True)
        if name in cube.coords:
            out = out.assign_coords({name: var})
        else:
            out[name] = var
    text = _grid_text(cube["reflectance"]) or next(
        (t for t in (_grid_text(v) for v in cube.data_vars.values()) if t), names[0])
    for name, var in out.data_vars.items():
        if name not in names:
            var.attrs["grid_mapping"] = text
    return out


def _variables(out: xr.Dataset, cube: xr.Dataset, class_codes: tuple[int, ...] | None
               ) -> xr.Dataset:
    refl = _clean(cube["reflectance"].attrs)
    units = refl.get("units", "1")
    if "reflectance" in out:
        attrs = {"long_name": "surface reflectance", "units": "1", **refl}
        attrs.update({PREFIX + "description": _DESCRIPTIONS["reflectance"],
                      "ancillary_variables": "reflectance_std filled"})
        out["reflectance"].attrs.update(attrs)
    if "reflectance_std" in out:
        std = {"long_name": f"standard deviation of {refl.get('long_name', 'surface reflectance')}",
               "units": units}
        if "standard_name" in refl:
            std["standard_name"] = f"{refl['standard_name']} standard_error"
        out["reflectance_std"].attrs.update(std)
    for name, (values, meanings, long_name) in FLAGS.items():
        if name in out:
            out[name].attrs.update({"long_name": long_name,
                                    "flag_values": np.asarray(values, dtype=np.int8),
                                    "flag_meanings": meanings})
    if "landcover" in out:
        given = _clean(cube["landcover"].attrs) if "landcover" in cube else {}
        codes = class_codes if class_codes is not None else tuple(
            range(len(out["class"].values)))
        dtype = np.int8 if max(codes) < 128 else np.int16
        attrs = {"long_name": "land cover class (majority vote of the ensemble)", **given,
                 "flag_values": np.asarray(codes, dtype=dtype),
                 "flag_meanings": " ".join(str(c) for c in out["class"].values)}
        out["landcover"].attrs.update(attrs)
    for name in ("class_probability", "change_probability"):
        if name in out:
            out[name].attrs.update({"long_name": _DESCRIPTIONS[name], "units": "1"})
    return out


def carry_metadata(out: xr.Dataset, cube: xr.Dataset, *, settings: dict[str, Any],
                   command: str, class_codes: tuple[int, ...] | None = None) -> xr.Dataset:
    """``out`` with the input ``cube``'s metadata carried over and the run described (module
    docstring). ``settings``: :func:`provenance`'s attributes; ``command``: the line that made
    the output, for ``history``; ``class_codes``: the landcover values standing for each class
    (None: 0, 1, ...)."""
    same_times = out.sizes.get("time") == cube.sizes.get("time") and bool(
        np.array_equal(out["time"].values, cube["time"].values))
    out = _coords(out, cube, same_times=same_times)
    out = _variables(out, cube, class_codes)
    out = _grid_mapping(out, cube)
    attrs = _clean(cube.attrs)
    attrs.setdefault("Conventions", "CF-1.8")
    previous = str(attrs.get("history", "")).rstrip("\n")
    created = settings.get(PREFIX + "created")
    line = history_line(command, {"created": created, "sciflow": sciflow.__version__}
                        if created else None)
    attrs["history"] = (previous + "\n" if previous else "") + line
    attrs.update(netcdf_safe_attrs(settings))
    out.attrs = attrs
    return out

"""What an output cube keeps of its input (CF attributes, coordinates, grid mapping stored
either way, flag metadata, land-cover codes) and says about itself (history, settings), through
files both ways (netCDF and zarr); per-band and stackstac inputs; the forecast's dates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from sciflow.datasets.sentinel import (
    SentinelSeriesSpec,
    cube_crs,
    generate_cube,
    grid_mappings,
    load_cube,
    save_cube,
)
from sciflow.domains.remote_sensing import apply_to_cube, series_from_cube, write_cube
from sciflow.domains.remote_sensing.cubes import CUBE_SUFFIXES
from sciflow.outputs import claim_output

SPEC = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5, change_rate=2.0)
RUN = {"samples": 2, "steps": 1}


@pytest.fixture(scope="module")
def model(tiny_series, untrained_model):
    """An untrained model (it reproduces linear interpolation): fast, and enough to test what
    is written around the values."""
    return untrained_model(tiny_series(2, spec=SPEC), checkpoint="model.pt", digest="abc123")


def _user_cube(grid: str) -> xr.Dataset:
    """A cube as a user's file holds it: global attributes, CF coordinate attributes, a
    history, and the CRS as rioxarray's coordinate or as a CF grid-mapping data variable."""
    cube = generate_cube(SPEC, seed=3).drop_vars("doy")
    cube.attrs = {"title": "my scene", "institution": "a lab", "Conventions": "CF-1.8",
                  "history": "2024-01-01: made by hand"}
    cube["reflectance"].attrs["source_band_note"] = "kept verbatim"
    wkt = 'PROJCS["WGS 84 / UTM zone 33N"]'
    if grid == "coordinate":
        cube = cube.assign_coords(spatial_ref=xr.DataArray(
            np.int64(0), attrs={"crs_wkt": wkt, "spatial_ref": wkt}))
        name = "spatial_ref"
    else:
        cube["crs"] = xr.DataArray(np.int32(0), attrs={"grid_mapping_name": "transverse_mercator",
                                                       "crs_wkt": wkt})
        name = "crs"
    for var in ("reflectance", "cloud", "valid", "landcover", "sar", "clear_reflectance"):
        cube[var].attrs["grid_mapping"] = name
    return cube


def _run(model, cube, task, tmp_path, suffix, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = apply_to_cube(model, cube, task, **RUN, **kw)
        with claim_output(tmp_path / f"out{suffix}", suffixes=CUBE_SUFFIXES) as out:
            path = write_cube(result, out)
        return result, xr.open_dataset(path, engine="zarr" if suffix == ".zarr" else None)


@pytest.mark.parametrize("grid", ["coordinate", "data_variable"])
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_attributes_coordinates_and_grid_mapping_survive_a_fill(model, tmp_path, grid, suffix):
    cube = _user_cube(grid)
    src = tmp_path / f"in{suffix}"
    save_cube(cube, src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        given = load_cube(src)
    _, back = _run(model, given, "cloud_removal", tmp_path, suffix)
    for key in ("title", "institution", "Conventions"):
        assert back.attrs[key] == cube.attrs[key]
    history = back.attrs["history"].splitlines()
    assert history[0] == "2024-01-01: made by hand" and "sciflow" in history[1]
    assert back.attrs["sciflow_checkpoint"] == "model.pt"
    assert back.attrs["sciflow_checkpoint_sha256"] == "abc123"
    assert back.attrs["sciflow_seed"] == 0 and back.attrs["sciflow_samples"] == 2
    assert "raw spread" in back.attrs["sciflow_uncertainty"]
    refl = back["reflectance"].attrs
    for key in ("units", "long_name", "standard_name", "source_band_note"):
        assert refl[key] == cube["reflectance"].attrs[key]
    assert back["reflectance_std"].attrs["units"] == "1"
    assert back["reflectance_std"].attrs["standard_name"].endswith(" standard_error")
    for axis in ("x", "y"):
        assert back[axis].attrs["standard_name"] == f"projection_{axis}_coordinate"
        assert back[axis].attrs["units"] == "m"
    name = "spatial_ref" if grid == "coordinate" else "crs"
    # stored as it came: a coordinate stays one, a data variable stays one
    assert (name in back.coords) == (grid == "coordinate")
    assert (name in back.data_vars) == (grid == "data_variable")
    if grid == "data_variable":
        assert back[name].attrs["grid_mapping_name"] == "transverse_mercator"
    for var in ("reflectance", "reflectance_std", "filled"):
        assert back[var].attrs["grid_mapping"] == name
    assert grid_mappings(back) == (name,) and cube_crs(back).startswith("PROJCS")
    assert back["filled"].attrs["flag_meanings"] == "observed_clear predicted"
    np.testing.assert_array_equal(back["filled"].attrs["flag_values"], [0, 1])
    back.close()


def test_change_flags_and_landcover_class_codes_round_trip(model, tmp_path):
    """landcover with ESA WorldCover-like codes (10, 20, ...): read as class indices, written
    back as the same codes; change is its own flag, not a copy of landcover's meanings."""
    cube = _user_cube("coordinate")
    codes = np.array([80, 10, 40, 30, 60], dtype=np.int16)  # water, forest, crop, grass, bare
    cube["landcover"] = cube["landcover"].copy(data=codes[cube["landcover"].values])
    cube["landcover"].attrs.update({"flag_values": codes, "long_name": "WorldCover class",
                                    "flag_colors": "#0064c8 #006400 #f096ff #ffff4c #b4b4b4"})
    series = series_from_cube(cube)
    np.testing.assert_array_equal(series.labels[0].numpy(),
                                  generate_cube(SPEC, seed=3).landcover.values)
    _, back = _run(model, cube, "change_detection", tmp_path, ".nc")
    assert set(np.unique(back["landcover"].values)) <= set(codes.tolist())
    np.testing.assert_array_equal(back["landcover"].attrs["flag_values"], codes)
    assert back["landcover"].attrs["flag_meanings"] == cube["landcover"].attrs["flag_meanings"]
    assert back["landcover"].attrs["flag_colors"] == cube["landcover"].attrs["flag_colors"]
    assert back["landcover"].attrs["long_name"] == "WorldCover class"
    change = back["change"].attrs
    assert change["flag_meanings"] == "no_change change"
    np.testing.assert_array_equal(change["flag_values"], [0, 1])
    assert back["change"].dtype == bool
    assert back["class_probability"].attrs["units"] == "1"
    back.close()


def test_landcover_values_outside_flag_values_are_refused():
    from sciflow.domains.remote_sensing import CubeInputError

    cube = _user_cube("coordinate")
    cube["landcover"].attrs["flag_values"] = np.array([10, 20, 30, 40, 50], dtype=np.int8)
    with pytest.raises(CubeInputError, match="not among its flag_values"):
        series_from_cube(cube)


def test_forecast_output_holds_only_the_new_dates(model, tmp_path):
    cube = _user_cube("coordinate")
    last = cube.time.values.max()
    dates = [last + np.timedelta64(5, "D"), last + np.timedelta64(15, "D")]
    result, back = _run(model, cube, "forecasting", tmp_path, ".nc", forecast_dates=dates)
    np.testing.assert_array_equal(back.time.values, np.asarray(dates, dtype="datetime64[ns]"))
    assert back["filled"].values.all()  # every forecast pixel is predicted
    assert back.attrs["title"] == "my scene" and back.attrs["sciflow_task"] == "forecasting"
    joined = xr.concat([cube[["reflectance"]], back[["reflectance"]]], "time")  # as help says
    assert joined.sizes["time"] == cube.sizes["time"] + 2
    back.close()


def test_per_band_and_stackstac_inputs_give_the_native_result(model):
    cube = generate_cube(SPEC, seed=4)
    native = _quiet_apply(model, cube)
    per_band = xr.Dataset({name: cube.reflectance.sel(band=b).drop_vars("band")
                           for b, name in zip(cube.band.values, ("blue", "green", "red", "nir"))})
    per_band = per_band.assign(cloud=cube.cloud, valid=cube.valid)
    stacked = cube.reflectance.drop_vars("doy")
    stacked.attrs = {"crs": "epsg:32633", "spec": object()}
    for other in (per_band, stacked):
        got = _quiet_apply(model, other)
        if other is stacked:  # no cloud mask: fewer pixels filled, the clear ones the same
            assert cube_crs(got) == "epsg:32633"
            continue
        np.testing.assert_array_equal(got.reflectance.values, native.reflectance.values)
        assert [str(b) for b in got.band.values] == [str(b) for b in native.band.values]
        assert [str(c) for c in got.common_name.values] == ["blue", "green", "red", "nir"]


def _quiet_apply(model, cube):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return apply_to_cube(model, cube, "reconstruction", **RUN)

"""The cube layouts users have (odc-stac's one variable per band, stackstac's DataArray, an SCL
band) read as the native cube, and CF grid mappings found however they are stored."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from sciflow.datasets.sentinel import (
    CubeError,
    SentinelSeriesSpec,
    cube_crs,
    generate_cube,
    grid_mappings,
    load_cube,
    save_cube,
    validate_cube,
)
from sciflow.datasets.sentinel_layouts import COMMON_NAMES, SCL_CLOUD, band_id

CUBE = generate_cube(SentinelSeriesSpec(size=8, n_dates=3, crs="EPSG:32633"), seed=0)
COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def test_band_ids_and_common_names():
    assert band_id("b2") == "B02" and band_id("B02") == "B02" and band_id("B8A") == "B8A"
    assert band_id("b8a") == "B8A" and band_id("B12") == "B12" and band_id("B13") is None
    assert band_id("Red") == "B04" and band_id("nir08") == "B8A" and band_id("ndvi") is None
    assert len(set(COMMON_NAMES.values())) == len(COMMON_NAMES)  # one id per common name


@pytest.mark.parametrize("naming", ["common", "ids"])
def test_one_variable_per_band_reads_like_the_native_cube(naming):
    """odc-stac: uint16 digital numbers per band, nodata = 0, a spatial_ref coordinate."""
    bands = list(COMMON) if naming == "ids" else [COMMON[b] for b in COMMON]
    dn = (CUBE.reflectance.values * 10_000).round().astype(np.uint16)
    dn[0, 1, 0, 0] = 0  # one pixel of B03 not acquired
    ds = xr.Dataset({name: (("time", "y", "x"), dn[:, k], {"nodata": 0, "units": "1"})
                     for k, name in enumerate(bands)},
                    coords={"time": CUBE.time.values, "y": CUBE.y, "x": CUBE.x,
                            "spatial_ref": CUBE.spatial_ref})
    with pytest.warns(UserWarning, match="digital numbers"):
        cube = validate_cube(ds)
    assert cube.reflectance.dims == ("time", "band", "y", "x")
    assert [str(b) for b in cube.band.values] == list(COMMON)
    if naming == "common":
        assert [str(c) for c in cube.common_name.values] == bands
    assert np.isnan(cube.reflectance.values[0, 1, 0, 0])
    ok = np.isfinite(cube.reflectance.values)
    np.testing.assert_allclose(cube.reflectance.values[ok], dn[ok] / 10_000.0, rtol=1e-6)
    assert cube.reflectance.attrs["units"] == "1" and "nodata" not in cube.reflectance.attrs
    assert cube_crs(cube) == "EPSG:32633"


def test_scl_becomes_cloud_and_valid_masks():
    ds = CUBE[["reflectance"]].copy()
    scl = np.full((3, 8, 8), 4, dtype=np.uint8)
    scl[0, :2] = 9
    scl[1, 0, :3] = 3
    scl[2, -1] = 0
    ds["SCL"] = (("time", "y", "x"), scl)
    cube = validate_cube(ds)
    assert "SCL" not in cube
    np.testing.assert_array_equal(cube.cloud.values, np.isin(scl, SCL_CLOUD))
    np.testing.assert_array_equal(cube.valid.values, scl != 0)
    # as a band of a stacked array (stackstac with the scl asset)
    stacked = xr.concat([CUBE.reflectance, xr.DataArray(scl.astype(np.float32)[:, None],
                                                        dims=("time", "band", "y", "x"))
                         .assign_coords(band=["scl"], time=CUBE.time, y=CUBE.y, x=CUBE.x)],
                        dim="band").drop_vars(["spatial_ref", "doy"], errors="ignore")
    cube2 = validate_cube(stacked)
    assert [str(b) for b in cube2.band.values] == list(COMMON)
    np.testing.assert_array_equal(cube2.cloud.values, np.isin(scl, SCL_CLOUD))


def test_stackstac_dataarray_keeps_its_crs_and_writes(tmp_path):
    """stackstac: (time, band, y, x), common-name bands, per-item object coordinates, crs and
    affine transform attributes, an unpicklable spec object."""
    da = CUBE.reflectance.drop_vars(["spatial_ref", "doy"]).assign_coords(
        band=[COMMON[b] for b in COMMON],
        id=("time", np.array(["S2A_1", "S2B_2", None], dtype=object)),
        bbox=("time", np.array([[0, 1], [2], [3]], dtype=object)),
        eo_cloud_cover=("time", np.array([1.5, None, 3.0], dtype=object)))
    da.attrs = {"crs": "epsg:32633", "resolution": 10.0, "spec": object(),
                "transform": (10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0, 0.0, 0.0, 1.0)}
    cube = validate_cube(da)
    assert [str(b) for b in cube.band.values] == list(COMMON)
    assert cube_crs(cube) == "epsg:32633" and grid_mappings(cube) == ("spatial_ref",)
    assert cube.spatial_ref.attrs["GeoTransform"].split() == [
        "500000.0", "10.0", "0.0", "5000000.0", "0.0", "-10.0"]
    assert list(cube.id.values) == ["S2A_1", "S2B_2", ""] and "bbox" not in cube.coords
    assert np.isnan(cube.eo_cloud_cover.values[1]) and "spec" not in cube.reflectance.attrs
    path = save_cube(cube, tmp_path / "stack.nc")
    back = load_cube(path)
    assert cube_crs(back) == "epsg:32633" and list(back.id.values) == ["S2A_1", "S2B_2", ""]
    np.testing.assert_array_equal(back.reflectance.values, cube.reflectance.values)


@pytest.mark.parametrize("decode", [True, "all"])
def test_grid_mapping_as_data_variable_is_found(tmp_path, decode):
    """A CF grid-mapping data variable (not rioxarray's coordinate), as xarray opens it by
    default (a data variable, grid_mapping in attrs) and with decode_coords='all' (a
    coordinate, grid_mapping in encoding)."""
    ds = CUBE.drop_vars(["spatial_ref", "doy"])
    for v in ds.data_vars.values():
        v.attrs.pop("grid_mapping", None)
        v.attrs["grid_mapping"] = "crs"
    ds["crs"] = xr.DataArray(np.int32(0), attrs={"grid_mapping_name": "transverse_mercator",
                                                  "crs_wkt": 'PROJCS["WGS 84 / UTM zone 33N"]'})
    save_cube(ds, tmp_path / "cf.nc")
    opened = xr.open_dataset(tmp_path / "cf.nc", decode_coords=decode)
    assert ("crs" in opened.coords) == (decode == "all")
    cube = validate_cube(opened)
    assert grid_mappings(cube) == ("crs",)
    assert cube_crs(cube).startswith("PROJCS")


def test_a_dataset_without_reflectance_or_bands_says_what_is_read():
    ds = xr.Dataset({"ndvi": (("time", "y", "x"), np.zeros((3, 8, 8)))},
                    coords={"time": CUBE.time.values})
    with pytest.raises(CubeError, match="one \\(time, y, x\\) variable per band"):
        _quiet(validate_cube, ds)

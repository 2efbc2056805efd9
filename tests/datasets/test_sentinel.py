"""The synthetic Sentinel-2-like generator and the cube format: physics of the series (clouds,
phenology, SAR, changes), determinism, the spatial hold-out, validation errors, netCDF / zarr I/O."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from sciflow.datasets.sentinel import (
    LANDCOVER_CLASSES,
    TEST_COLUMNS,
    TRAIN_COLUMNS,
    CubeError,
    SentinelSeriesSpec,
    class_names,
    cube_crs,
    generate_cube,
    generate_cubes,
    load_cube,
    load_template,
    save_cube,
    validate_cube,
    write_crs,
)

SMALL = SentinelSeriesSpec(size=16, n_dates=6)


def test_cube_layout_and_determinism():
    a = generate_cube(SMALL, seed=3)
    b = generate_cube(SMALL, seed=3)
    c = generate_cube(SMALL, seed=4)
    assert a.reflectance.dims == ("time", "band", "y", "x")
    assert a.reflectance.shape == (6, 4, 16, 16)
    assert a.sar.dims == ("time", "polarization", "y", "x")
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.reflectance.values, c.reflectance.values)
    times = a.time.values
    assert (np.diff(times.astype(np.int64)) > 0).all()
    assert len({str(t)[:4] for t in times.astype("datetime64[Y]")}) == 1  # one year
    doy = (times.astype("datetime64[D]") - times.astype("datetime64[Y]")).astype(int) + 1
    np.testing.assert_array_equal(a.doy.values, doy)
    for v in (a.reflectance, a.clear_reflectance):
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0
    assert class_names(a) == LANDCOVER_CLASSES


def test_clear_pixels_show_the_truth_and_clouds_are_bright():
    cubes = generate_cubes(SentinelSeriesSpec(size=24, n_dates=8, cloud_cover=0.5), 4, seed=1)
    cloudy_gain = []
    for cube in cubes:
        clear = ~cube.cloud.values
        obs, truth = cube.reflectance.values, cube.clear_reflectance.values
        np.testing.assert_array_equal(np.moveaxis(obs, 1, -1)[clear],
                                      np.moveaxis(truth, 1, -1)[clear])
        thick = cube.cloud.values & (obs[:, 0] > truth[:, 0] + 0.05)
        cloudy_gain.append(thick.sum() / max(cube.cloud.values.sum(), 1))
    assert np.mean(cloudy_gain) > 0.5  # most flagged pixels are brightened clouds (rest: shadow)


def test_cloud_cover_follows_the_spec():
    def fraction(cover: float) -> float:
        spec = SentinelSeriesSpec(size=16, n_dates=10, cloud_cover=cover)
        return float(np.mean([c.cloud.values.mean() for c in generate_cubes(spec, 12, seed=2)]))

    assert fraction(0.0) == 0.0
    low, high = fraction(0.2), fraction(0.8)
    assert low < 0.4 < 0.6 < high


def test_vegetation_drives_ndvi_season_and_sar():
    cube = generate_cube(SentinelSeriesSpec(size=32, n_dates=24, cloud_cover=0.0,
                                            change_rate=0.0), seed=5)
    truth = cube.clear_reflectance.values
    ndvi = (truth[:, 3] - truth[:, 2]) / (truth[:, 3] + truth[:, 2])
    crop = cube.landcover.values == LANDCOVER_CLASSES.index("cropland")
    if crop.sum() > 50:  # cropland has a growing season: its NDVI varies a lot over the year
        per_date = np.array([ndvi[t][crop[t]].mean() for t in range(24)])
        assert per_date.max() - per_date.min() > 0.3
    vh = cube.sar.sel(polarization="VH").values
    r = np.corrcoef(ndvi.ravel(), vh.ravel())[0, 1]
    assert r > 0.4, f"SAR VH should follow vegetation, correlation {r:.2f}"


def test_land_cover_changes_are_labelled_and_absent_without_rate():
    still = generate_cube(SentinelSeriesSpec(size=32, n_dates=8, change_rate=0.0), seed=1)
    assert (still.landcover.values == still.landcover.values[0]).all()
    moved = [generate_cube(SentinelSeriesSpec(size=32, n_dates=8, change_rate=3.0), seed=s)
             for s in range(3)]
    changed = [(c.landcover.values[1:] != c.landcover.values[:-1]).sum() for c in moved]
    assert sum(changed) > 0
    for c in moved:  # a change re-labels the surface: the truth of changed pixels moves too
        lab = c.landcover.values
        flip = lab[-1] != lab[0]
        if flip.any():
            d = np.abs(c.clear_reflectance.values[-1] - c.clear_reflectance.values[0])
            assert d[:, flip].mean() > 0


def test_template_and_regions():
    scene = load_template("auto")
    assert scene.reflectance.shape[0] == 4 and scene.landcover.shape == scene.reflectance.shape[1:]
    assert set(np.unique(scene.landcover)) <= set(range(len(LANDCOVER_CLASSES)))
    proc = load_template("procedural")
    assert "procedural" in proc.source and proc.reflectance.shape == (4, 300, 300)
    assert TRAIN_COLUMNS[1] < TEST_COLUMNS[0]
    big = generate_cube(SentinelSeriesSpec(size=120, n_dates=2, region="test"), seed=0)
    assert big.reflectance.shape[-2:] == (120, 120)  # larger than the region: mirrored mosaic
    with pytest.raises(ValueError, match="region"):
        SentinelSeriesSpec(region="north")
    with pytest.raises(ValueError, match="cloud_cover"):
        SentinelSeriesSpec(cloud_cover=1.0)


def test_validation_errors_name_the_problem():
    cube = generate_cube(SMALL, seed=0)
    with pytest.raises(CubeError, match="reflectance"):
        validate_cube(cube.drop_vars("reflectance"))
    with pytest.raises(CubeError, match="lat/lon"):
        validate_cube(cube.rename(y="lat", x="lon"))
    with pytest.raises(CubeError, match="missing"):
        validate_cube(cube.reflectance.isel(band=0))
    dup = cube.assign_coords(time=np.r_[cube.time.values[:1], cube.time.values[:-1]])
    with pytest.raises(CubeError, match="duplicated"):
        validate_cube(dup)
    with pytest.raises(CubeError, match="datetime64"):
        validate_cube(cube.assign_coords(time=np.arange(6)))
    with pytest.raises(CubeError, match="unique"):
        validate_cube(cube.assign_coords(band=["B02", "B02", "B04", "B08"]))
    shuffled = cube.isel(time=[2, 0, 1, 3, 5, 4])
    with pytest.raises(CubeError, match="sortby"):
        validate_cube(shuffled, sort_time=False)
    with pytest.warns(UserWarning, match="sorted"):
        fixed = validate_cube(shuffled)
    xr.testing.assert_equal(fixed.reflectance, cube.reflectance)


def test_dataarray_and_integer_reflectance_are_read():
    cube = generate_cube(SMALL, seed=0)
    ds = validate_cube(cube.reflectance)
    assert list(ds.data_vars) == ["reflectance"] and "doy" in ds.coords
    dn = (cube.reflectance * 10_000).round().astype(np.uint16)
    with pytest.warns(UserWarning, match="10000"):
        back = validate_cube(dn)
    np.testing.assert_allclose(back.reflectance.values, cube.reflectance.values, atol=1e-4)
    transposed = validate_cube(cube.transpose("time", "y", "x", "band", "polarization"))
    assert transposed.reflectance.dims == ("time", "band", "y", "x")


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_keeps_values_masks_and_crs(tmp_path, suffix):
    cube = generate_cube(SentinelSeriesSpec(size=16, n_dates=4, crs="EPSG:32723"), seed=2)
    assert cube_crs(cube) == "EPSG:32723"
    path = save_cube(cube, tmp_path / f"cube{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = load_cube(path)
        lazy = load_cube(path, chunks={"y": 8, "x": 8})
    for name in ("reflectance", "clear_reflectance", "cloud", "sar", "landcover"):
        np.testing.assert_array_equal(back[name].values, cube[name].values)
    assert back.cloud.dtype == bool
    assert cube_crs(back) == "EPSG:32723"
    assert "GeoTransform" in back.spatial_ref.attrs
    assert lazy.reflectance.chunks is not None  # dask-backed, not loaded
    np.testing.assert_array_equal(lazy.reflectance.values, cube.reflectance.values)


def test_write_crs_geotransform_and_errors(tmp_path):
    cube = generate_cube(SMALL, seed=0)
    with_crs = write_crs(cube, 'PROJCS["WGS 84 / UTM zone 23S"]')
    assert "crs_wkt" in with_crs.spatial_ref.attrs
    x0, dx, _, y0, _, dy = map(float, with_crs.spatial_ref.attrs["GeoTransform"].split())
    assert dx == 10.0 and dy == -10.0 and x0 == float(cube.x[0]) - 5.0
    with pytest.raises(TypeError, match="crs"):
        write_crs(cube, "")
    with pytest.raises(CubeError, match=".nc"):
        save_cube(cube, tmp_path / "cube.tif")
    with pytest.raises(FileNotFoundError):
        load_cube(tmp_path / "missing.nc")

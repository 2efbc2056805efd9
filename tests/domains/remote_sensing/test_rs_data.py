"""Cubes -> tensors and the four task conditionings: what each task hides, that the condition
never reads the truth, torchgeo-style samples, band matching and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciflow.datasets.sentinel import CubeError, SentinelSeriesSpec, generate_cube, generate_cubes
from sciflow.domains.remote_sensing.config import Config
from sciflow.domains.remote_sensing.data import (
    SeriesBatch,
    Standardizer,
    hide_dates,
    series_from_cube,
    stack_series,
    tiles_from_cube,
)
from sciflow.domains.remote_sensing.tasks import TaskOptions, make_task
from sciflow.domains.remote_sensing.torchgeo import CubeTiles, to_torchgeo_sample
from sciflow.errors import InputError

SPEC = SentinelSeriesSpec(size=16, n_dates=6, cloud_cover=0.5, change_rate=1.0)
OBS, PRIOR, GIVEN, CLOUDY = slice(0, 4), slice(4, 8), 8, 9  # frame condition channels


@pytest.fixture(scope="module")
def series() -> SeriesBatch:
    return stack_series([series_from_cube(c) for c in generate_cubes(SPEC, 3, seed=7)])


@pytest.fixture(scope="module")
def std(series) -> Standardizer:
    return Standardizer.fit(series)


def task(series, std, name, **kw):
    opts = kw.pop("options", TaskOptions(drop_dates=2, horizon=2))
    return make_task(series, name, standardizer=std, n_classes=5, use_sar_channels=True,
                     options=opts, generator=torch.Generator().manual_seed(0), **kw)


def test_series_shapes_and_masks(series):
    b, t, c, h, w = series.shape
    assert (b, t, c, h, w) == (3, 6, 4, 16, 16)
    assert series.sar.shape == (3, 6, 2, 16, 16) and series.labels.dtype == torch.int64
    assert bool((series.clear <= series.available).all())
    clear = series.clear[:, :, None].expand_as(series.truth)
    torch.testing.assert_close(series.reflectance[clear], series.truth[clear])


def test_bands_are_matched_by_name():
    cube = generate_cube(SPEC, seed=1)
    s = series_from_cube(cube, bands=("B08", "B02"))
    torch.testing.assert_close(s.reflectance[0, :, 0], torch.from_numpy(
        cube.reflectance.sel(band="B08").values))
    with pytest.raises(CubeError, match=r"lacks band\(s\) \['B11'\]"):
        series_from_cube(cube, bands=("B02", "B11"))
    with pytest.raises(CubeError, match="no 'sar'"):
        series_from_cube(cube.drop_vars("sar"), sar=("VV", "VH"))
    with pytest.raises(CubeError, match="classes"):
        series_from_cube(cube, classes=("a", "b"))


def test_nan_and_invalid_pixels_are_not_available():
    cube = generate_cube(SPEC, seed=2)
    refl = cube.reflectance.values.copy()
    refl[1, :, 3, 4] = np.nan
    cube["reflectance"] = (cube.reflectance.dims, refl)
    cube["valid"][2] = False
    s = series_from_cube(cube)
    assert not s.available[0, 1, 3, 4] and not s.available[0, 2].any()
    assert torch.isfinite(s.reflectance).all()


@pytest.mark.parametrize("name", ["reconstruction", "cloud_removal", "forecasting",
                                  "change_detection"])
def test_condition_never_reads_the_truth(series, std, name):
    a = task(series, std, name)
    moved = SeriesBatch(**{**series.__dict__, "truth": series.truth + 0.3,
                           "labels": (series.labels + 1) % 5})
    b = task(series.__class__(**moved.__dict__), std, name)
    for f in ("frames", "aux", "times", "frame_features"):
        torch.testing.assert_close(getattr(a.cond, f), getattr(b.cond, f))
    assert not torch.allclose(a.x1, b.x1)
    spec = Config()
    assert a.cond.frames.shape[2] == spec.frame_channels
    assert a.x1.shape[2] == spec.channels


def test_what_each_task_hides(series, std):
    rec = task(series, std, "reconstruction")
    hidden_dates = ~rec.given.flatten(2).any(-1) & series.clear.flatten(2).any(-1)
    assert int(hidden_dates.sum(1).max()) <= 2 and int(hidden_dates.sum()) >= 3
    assert bool((rec.given <= series.clear).all())
    assert rec.cond.frames[:, :, CLOUDY].abs().sum() == 0  # no cloudy values shown
    assert bool((rec.cond.frames[:, :, GIVEN] == rec.given.float()).all())
    assert rec.cond.aux.abs().sum() == 0  # no SAR in reconstruction
    assert bool((rec.target == ~rec.given).all())

    cr = task(series, std, "cloud_removal")
    cloudy = series.available & ~series.clear
    assert bool((cr.cond.frames[:, :, CLOUDY] == cloudy.float()).all())
    assert bool((cr.given == series.clear).all())
    assert bool((cr.cond.aux[:, :, 2] == 1).all())  # SAR given everywhere

    fc = task(series, std, "forecasting")
    assert not fc.given[:, -2:].any() and not fc.target[:, :-2].any()
    assert fc.cond.aux[:, -2:].abs().sum() == 0  # no future SAR
    assert fc.cond.frames[:, -2:, OBS].abs().sum() == 0
    assert fc.cond.frames[:, -2:, GIVEN:].abs().sum() == 0
    # the interpolation prior of a future date is the last given value (persistence)
    last = fc.cond.frames[:, -3, PRIOR]
    assert bool((fc.cond.frames[:, -1, PRIOR] == last).all())

    cd = task(series, std, "change_detection")
    assert bool(cd.target.all())

    no_sar = task(series, std, "cloud_removal", options=TaskOptions(use_sar=False))
    assert no_sar.cond.aux.abs().sum() == 0


def test_mixed_tasks_and_errors(series, std):
    mixed = task(series, std, ["reconstruction", "forecasting", "cloud_removal"])
    assert mixed.tasks == ("reconstruction", "forecasting", "cloud_removal")
    with pytest.raises(InputError, match="unknown task"):
        task(series, std, "segmentation")
    with pytest.raises(InputError, match="3 series"):
        task(series, std, ["reconstruction"])
    with pytest.raises(InputError, match="horizon"):
        task(series, std, "forecasting", options=TaskOptions(horizon=0))


def test_self_supervised_target_uses_only_clear_pixels(series, std):
    blind = SeriesBatch(**{**series.__dict__, "truth": None, "labels": None})
    tb = task(blind, std, "reconstruction")
    assert tb.loss_mask is not None
    torch.testing.assert_close(tb.loss_mask[:, :, 0], series.clear.float())
    assert tb.loss_mask[:, :, 4:].abs().sum() == 0  # no labels: class channels untrained


def test_standardizer_round_trip(series, std):
    z = std.bands(series.truth)
    torch.testing.assert_close(std.unbands(z), series.truth)
    assert abs(float(z.mean())) < 1e-3
    assert Standardizer.from_dict(std.to_dict()) == std


def test_hide_dates_and_tiles(series):
    hidden_series, hidden = hide_dates(series, 2, generator=torch.Generator().manual_seed(1))
    assert bool((hidden.sum(1) == 2).all())
    assert not hidden_series.available[hidden].any()
    torch.testing.assert_close(hidden_series.truth, series.truth)
    cube = generate_cube(SentinelSeriesSpec(size=20, n_dates=6), seed=0)
    tiles = tiles_from_cube(cube, tile=8, frames=3)
    assert tiles.shape == (2 * 2 * 2, 3, 4, 8, 8)
    with pytest.raises(CubeError, match="dates"):
        tiles_from_cube(cube, tile=8, frames=7)


def test_torchgeo_sample():
    cube = generate_cube(SentinelSeriesSpec(size=16, n_dates=5, crs="EPSG:32723"), seed=0)
    sample = to_torchgeo_sample(cube)
    assert sample["image"].shape == (5, 4, 16, 16) and sample["mask"].dtype == torch.bool
    assert sample["crs"] == "EPSG:32723"
    minx, maxx, miny, maxy, mint, maxt = sample["bounds"]
    assert maxx - minx == pytest.approx(160.0) and maxy - miny == pytest.approx(160.0)
    assert mint < maxt and len(sample["dates"]) == 5
    assert sample["landcover"].shape == (5, 16, 16)


def test_cube_tiles_dataset_yields_torchgeo_samples():
    cube = generate_cube(SentinelSeriesSpec(size=20, n_dates=3), seed=0)
    ds = CubeTiles(cube, tile=8, stride=6)
    assert len(ds) == 3 * 3
    item = ds[4]
    assert item["image"].shape == (3, 4, 8, 8)
    torch.testing.assert_close(item["image"], torch.from_numpy(
        cube.reflectance.values[:, :, 6:14, 6:14]))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=list)
    assert sum(len(b) for b in loader) == 9
    with pytest.raises(CubeError, match="smaller"):
        CubeTiles(cube, tile=32)


def test_names_that_moved_still_import_from_data():
    """sciflow 0.1 imported the task and torchgeo helpers from .data; they moved out."""
    from sciflow.domains.remote_sensing import data, tasks, torchgeo

    assert data.make_task is tasks.make_task and data.TaskOptions is tasks.TaskOptions
    assert data.CubeTiles is torchgeo.CubeTiles
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018

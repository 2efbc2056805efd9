"""Training, checkpoints, tiled prediction and whole-cube processing (eager and dask), with the
guarantees a user relies on: observed clear pixels come back unchanged, outputs cover the
scene, bad input is refused with a clear message."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sciflow.datasets.sentinel import (
    CubeError,
    SentinelSeriesSpec,
    cube_crs,
    generate_cube,
    generate_cubes,
    load_cube,
    save_cube,
)
from sciflow.domains.remote_sensing import (
    RSModelSpec,
    TrainOptions,
    apply_to_cube,
    evaluate_task,
    fit_reference,
    hide_dates,
    load_rs,
    predict_series,
    series_from_cube,
    stack_series,
    train_rs,
)

TINY = RSModelSpec(frames=4, tile=8, patch_size=4, dim=16, depth=1, heads=2, pixel_head=4)
DATA = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5, change_rate=1.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("rs_run")
    cubes = generate_cubes(DATA, 6, seed=0)
    model, result = train_rs(cubes, TINY, options=TrainOptions(
        steps=4, batch_size=2, out_dir=out, progress=False, log_every=2))
    return model, result, cubes


def test_training_writes_a_checkpoint_that_reloads_exactly(trained):
    model, result, cubes = trained
    assert result.step == 4 and np.isfinite(result.final_loss)
    again = load_rs(result.checkpoint)
    assert again.spec == TINY and again.standardizer == model.standardizer
    s = series_from_cube(cubes[0])
    a = predict_series(model, s, "cloud_removal", samples=2, steps=2, seed=3)
    b = predict_series(again, s, "cloud_removal", samples=2, steps=2, seed=3)
    torch.testing.assert_close(a.reflectance, b.reflectance)


@pytest.mark.parametrize("task", ["reconstruction", "cloud_removal", "change_detection"])
def test_tiled_prediction_covers_a_larger_scene_and_keeps_observations(trained, task):
    model = trained[0]
    s = series_from_cube(generate_cube(SentinelSeriesSpec(size=20, n_dates=6, cloud_cover=0.5),
                                       seed=4))
    pred = predict_series(model, s, task, samples=2, steps=2, overlap=2)
    assert pred.reflectance.shape == s.reflectance.shape  # 6 dates > window of 4: two windows
    assert torch.isfinite(pred.reflectance).all() and torch.isfinite(pred.reflectance_std).all()
    keep = pred.given[:, :, None].expand_as(s.reflectance)
    torch.testing.assert_close(pred.reflectance[keep], s.reflectance[keep])
    assert pred.reflectance_std[keep].abs().max() == 0
    assert pred.samples.shape[0] == 2
    if task == "change_detection":
        assert pred.labels.shape == s.clear.shape
        torch.testing.assert_close(pred.class_probability.sum(2),
                                   torch.ones_like(pred.class_probability[:, :, 0]))


def test_all_cloud_pixels_are_filled(trained):
    model = trained[0]
    cube = generate_cube(DATA, seed=9)
    cube["cloud"][:, 2:4, 2:4] = True  # never seen clear
    s = series_from_cube(cube)
    pred = predict_series(model, s, "reconstruction", samples=1, steps=2)
    assert torch.isfinite(pred.reflectance[..., 2:4, 2:4]).all()
    assert bool(pred.target[..., 2:4, 2:4].all())


def test_cube_outputs_eager_and_lazy(trained, tmp_path):
    model = trained[0]
    cube = generate_cube(SentinelSeriesSpec(size=20, n_dates=4, crs="EPSG:32723"), seed=5)
    eager = apply_to_cube(model, cube, "reconstruction", samples=1, steps=2, overlap=2)
    assert eager.reflectance.dims == ("time", "band", "y", "x")
    assert cube_crs(eager) == "EPSG:32723"
    path = save_cube(cube, tmp_path / "scene.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy_in = load_cube(path, chunks={"y": 10, "x": 10})
    lazy = apply_to_cube(model, lazy_in, "reconstruction", samples=1, steps=2, overlap=2)
    assert lazy.reflectance.chunks is not None  # nothing computed yet
    out = save_cube(lazy, tmp_path / "filled.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = load_cube(out)
    clear = ~cube.cloud.values
    obs = np.moveaxis(cube.reflectance.values, 1, -1)[clear]
    np.testing.assert_allclose(np.moveaxis(back.reflectance.values, 1, -1)[clear], obs, rtol=1e-6)
    np.testing.assert_array_equal(back.filled.values, ~clear)
    assert np.isfinite(back.reflectance.values).all()


def test_forecast_and_change_detection_cubes(trained):
    model = trained[0]
    cube = generate_cube(DATA, seed=6)
    last = cube.time.values[-1].astype("datetime64[D]")
    dates = [str(last + np.timedelta64(10, "D")), str(last + np.timedelta64(20, "D"))]
    fc = apply_to_cube(model, cube, "forecasting", samples=2, steps=2, forecast_dates=dates)
    assert fc.sizes["time"] == 2 and bool(fc.filled.all())
    assert fc.time.values[0] == np.datetime64(dates[0], "ns")
    ch = apply_to_cube(model, cube, "change_detection", samples=2, steps=2)
    assert set(ch.data_vars) == {"landcover", "class_probability", "change_probability", "change"}
    assert not bool(ch.change.isel(time=0).any())
    with pytest.raises(CubeError, match="after the cube's last date"):
        apply_to_cube(model, cube, "forecasting", forecast_dates=[str(cube.time.values[0])])
    with pytest.raises(ValueError, match="at most 3"):
        apply_to_cube(model, cube, "forecasting", forecast_dates=[f"2030-01-0{i}" for i in
                                                                   range(1, 5)])
    with pytest.raises(ValueError, match="forecast_dates"):
        apply_to_cube(model, cube, "forecasting")


def test_band_mismatch_and_missing_sar_are_handled(trained):
    model = trained[0]
    cube = generate_cube(DATA, seed=7)
    with pytest.raises(CubeError, match="B08"):
        apply_to_cube(model, cube.sel(band=["B02", "B03", "B04"]), "reconstruction")
    no_sar = apply_to_cube(model, cube.drop_vars("sar"), "cloud_removal", samples=1, steps=1)
    assert np.isfinite(no_sar.reflectance.values).all()  # optical-only fallback
    with pytest.raises(ValueError, match="unknown task"):
        apply_to_cube(model, cube, "denoise")


def test_evaluation_reports_model_and_baselines(trained):
    model, _, cubes = trained
    train = stack_series([series_from_cube(c) for c in cubes])
    ref = fit_reference(train, len(TINY.classes))
    test = stack_series([series_from_cube(c) for c in generate_cubes(DATA, 2, seed=11)])
    rec, _ = hide_dates(test, 1, generator=torch.Generator().manual_seed(0))
    r = evaluate_task(model, rec, "reconstruction", reference=ref, samples=2, steps=2)
    assert set(r) == {"model", "last observation", "closest observation", "linear interpolation"}
    assert r["model"].crps is not None and r["linear interpolation"].crps is None
    f = evaluate_task(model, test, "forecasting", reference=ref, samples=1, steps=2)
    assert set(f) == {"model", "persistence", "climatology"}
    c = evaluate_task(model, test, "change_detection", reference=ref, samples=1, steps=2)
    assert set(c) == {"model", "centroid on linear interpolation"}
    only = evaluate_task(None, rec, "cloud_removal", reference=ref)
    assert "model" not in only and "linear interpolation" in only


def test_training_rejects_data_that_do_not_fit_the_spec():
    cubes = generate_cubes(DATA, 2, seed=0)
    with pytest.raises(CubeError, match="sar"):
        train_rs([c.drop_vars("sar") for c in cubes], TINY, options=TrainOptions(steps=1))
    with pytest.raises(CubeError, match="dates"):
        train_rs(cubes, RSModelSpec(frames=6, tile=8, dim=16, depth=1, heads=2),
                 options=TrainOptions(steps=1))
    with pytest.raises(ValueError, match="task_weights"):
        TrainOptions(task_weights=(1.0, 0.0))


def test_untrained_model_reproduces_linear_interpolation():
    """The network predicts a correction to the interpolation prior and starts at zero, so before
    training its reconstruction is exactly linear interpolation of the given pixels."""
    from sciflow.domains.remote_sensing.baselines import linear_interpolation
    from sciflow.domains.remote_sensing.data import Standardizer
    from sciflow.domains.remote_sensing.model import build_model
    from sciflow.domains.remote_sensing.pipeline import RSModel

    s = stack_series([series_from_cube(c) for c in generate_cubes(DATA, 2, seed=3)])
    model = RSModel(build_model(TINY).eval(), TINY, Standardizer.fit(s))
    pred = predict_series(model, s, "reconstruction", samples=2, steps=3)
    li = linear_interpolation(s.reflectance, pred.given, s.days)
    torch.testing.assert_close(pred.reflectance, li, atol=1e-5, rtol=1e-5)

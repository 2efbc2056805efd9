"""Training, checkpoints, tiled prediction and whole-cube processing (eager and dask), with the
guarantees a user relies on: observed clear pixels come back unchanged, outputs cover the
scene, bad input is refused with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
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
    Config,
    apply_to_cube,
    evaluate,
    evaluate_task,
    fit_reference,
    hide_dates,
    load,
    predict_series,
    sample,
    series_from_cube,
    stack_series,
    train,
)
from sciflow.errors import InputError

DATA = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5, change_rate=1.0)


def quick(config: Config, **train) -> Config:
    return config.replace(train={"steps": 4, "progress": False, "log_every": 2, **train})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny):
    out = tmp_path_factory.mktemp("rs_run")
    cubes = generate_cubes(DATA, 6, seed=0)
    model, result = train(cubes, quick(tiny, out_dir=out), return_result=True)
    return model, result, cubes


def test_training_writes_a_checkpoint_that_reloads_exactly(trained, tmp_path):
    model, result, cubes = trained
    assert result.step == 4 and np.isfinite(result.final_loss)
    s = series_from_cube(cubes[0])
    a = sample(model, s, "cloud_removal", samples=2, steps=2, seed=3)
    for path in (result.checkpoint, model.save(tmp_path / "rs.pt")):
        again = load(path)
        assert again.config.to_dict() == model.config.to_dict()
        assert again.standardizer == model.standardizer
        b = sample(again, s, "cloud_removal", samples=2, steps=2, seed=3)
        assert torch.equal(a.reflectance, b.reflectance)


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
    with pytest.raises(InputError, match="at most 3"):
        apply_to_cube(model, cube, "forecasting", forecast_dates=[f"2030-01-0{i}" for i in
                                                                   range(1, 5)])
    with pytest.raises(InputError, match="forecast_dates"):
        apply_to_cube(model, cube, "forecasting")


def test_band_mismatch_and_missing_sar_are_handled(trained):
    model = trained[0]
    cube = generate_cube(DATA, seed=7)
    with pytest.raises(CubeError, match="B08"):
        apply_to_cube(model, cube.sel(band=["B02", "B03", "B04"]), "reconstruction")
    no_sar = apply_to_cube(model, cube.drop_vars("sar"), "cloud_removal", samples=1, steps=1)
    assert np.isfinite(no_sar.reflectance.values).all()  # optical-only fallback
    with pytest.raises(InputError, match="unknown task"):
        apply_to_cube(model, cube, "denoise")


def test_evaluation_reports_model_and_baselines(trained, tiny_series):
    model, _, cubes = trained
    train = stack_series([series_from_cube(c) for c in cubes])
    ref = fit_reference(train, len(model.config.classes))
    test = tiny_series(2, seed=11, spec=DATA)
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
    summary = evaluate(model, rec, "reconstruction", samples=1, steps=1).to_dict()
    assert summary["task"] == "reconstruction" and set(summary["scores"]["model"]) >= {"psnr",
                                                                                      "ssim"}


def test_training_rejects_data_that_do_not_fit_the_config(tiny):
    cubes = generate_cubes(DATA, 2, seed=0)
    with pytest.raises(CubeError, match="sar"):
        train([c.drop_vars("sar") for c in cubes], quick(tiny))
    with pytest.raises(CubeError, match="dates"):
        train(cubes, quick(tiny.replace(frames=6)))
    with pytest.raises(InputError, match="task_weights"):
        tiny.replace(task_weights=(1.0, 0.0))


def test_untrained_model_reproduces_linear_interpolation(tiny_series, untrained_model):
    """The network predicts a correction to the interpolation prior and starts at zero, so before
    training its reconstruction is exactly linear interpolation of the given pixels."""
    from sciflow.domains.remote_sensing.baselines import linear_interpolation

    s = tiny_series(2, seed=3, spec=DATA)
    model = untrained_model(s)
    pred = predict_series(model, s, "reconstruction", samples=2, steps=3)
    li = linear_interpolation(s.reflectance, pred.given, s.days)
    torch.testing.assert_close(pred.reflectance, li, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("solver", ["midpoint", "heun", "rk4", "dopri5"])
def test_every_solver_samples_finite_series(trained, solver):
    """The x1 prediction becomes a velocity through the path, finite at t = 1 for every solver."""
    model = trained[0]
    s = series_from_cube(generate_cube(DATA, seed=8))
    pred = sample(model, s, "reconstruction", samples=1, steps=2, solver=solver)
    assert torch.isfinite(pred.samples).all()


def test_same_seed_same_weights_in_two_processes():
    """seed= fixes everything from model initialisation on: two processes, bit-identical."""
    script = ("import hashlib, torch\n"
              "from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes\n"
              "from sciflow.domains.remote_sensing import Config, train\n"
              "torch.randn(11)  # unrelated draws before training must not matter\n"
              "cubes = generate_cubes(SentinelSeriesSpec(size=8, n_dates=4), 2)\n"
              "cfg = Config(frames=4, tile=8, dim=16, depth=1, heads=2, pixel_head=4, "
              "batch_size=2).replace(train={'steps': 2, 'seed': 5, 'progress': False})\n"
              "m = train(cubes, cfg)\n"
              "h = hashlib.sha256()\n"
              "for k, v in sorted(m.net.state_dict().items()):\n"
              "    h.update(v.numpy().tobytes())\n"
              "print(h.hexdigest())\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    runs = []
    for proc in procs:  # both run at once: the cost is one import of torch and xarray
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        runs.append(out.strip())
    assert runs[0] == runs[1] and len(runs[0]) == 64


def test_resume_continues_bit_exactly(tmp_path, tiny):
    """A run stopped after 2 of 4 updates and resumed ends where a straight run does (a constant
    schedule, so that the 2-update run's learning rates are the 4-update run's)."""
    cubes = generate_cubes(DATA, 2, seed=0)
    straight = train(cubes, quick(tiny, out_dir=tmp_path / "a", schedule="constant"))
    half = quick(tiny, out_dir=tmp_path / "b", schedule="constant")
    train(cubes, half.replace(train={"steps": 2}))
    resumed = train(cubes, half, resume=True)
    for k, v in straight.net.state_dict().items():
        assert torch.equal(v, resumed.net.state_dict()[k]), k


def test_files_of_sciflow_0_1_load(trained, tmp_path):
    """Untagged files with meta {"remote_sensing": {"spec", "standardizer"}} still load."""
    from sciflow.checkpoint import save_checkpoint

    model = trained[0]
    old = save_checkpoint(tmp_path / "old.pt", model.net, meta={"remote_sensing": {
        "spec": {k: list(v) if isinstance(v, tuple) else v
                 for k, v in model.config.network().items()},
        "standardizer": model.standardizer.to_dict()}})
    again = load(old)
    assert again.config.network() == model.config.network()
    s = series_from_cube(generate_cube(DATA, seed=2))
    assert torch.equal(sample(again, s, samples=1, steps=2).samples,
                       sample(model, s, samples=1, steps=2).samples)


def test_old_names_are_aliases_of_the_new_ones():
    import sciflow.domains.remote_sensing as rs
    from sciflow.domains.remote_sensing import pipeline

    assert rs.RSModelSpec is rs.Config and rs.RSModel is rs.Model and rs.load_rs is rs.load
    assert pipeline.train_rs is rs.train_rs and pipeline.apply_to_cube is rs.apply_to_cube
    options = rs.TrainOptions(steps=3, batch_size=2, lr=2e-3, progress=False)
    assert options.train.steps == 3 and options.batch_size == 2 and options.train.lr == 2e-3
    cubes = generate_cubes(DATA, 2, seed=0)
    spec = rs.RSModelSpec(frames=4, tile=8, dim=16, depth=1, heads=2, pixel_head=4)
    old, result = rs.train_rs(cubes, spec, options=options)
    new = train(cubes, spec.replace(batch_size=2, train={"steps": 3, "lr": 2e-3,
                                                         "progress": False}))
    assert result.step == 3 and old.spec == new.config
    for k, v in old.net.state_dict().items():
        assert torch.equal(v, new.net.state_dict()[k]), k

"""`sciflow rs generate|train|fill|forecast|detect-change` end to end on netCDF and zarr cubes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sciflow.cli import main
from sciflow.datasets.sentinel import load_cube


def run(*argv: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(list(argv))


def test_rs_commands_end_to_end(tmp_path, capsys):
    cubes, big, ck = tmp_path / "cubes", tmp_path / "big", tmp_path / "run"
    assert run("rs", "generate", "-o", str(cubes), "-n", "3", "--size", "8", "--dates", "4",
               "--crs", "EPSG:32723") == 0
    assert run("remote-sensing", "generate", "--out", str(big), "-n", "1", "--size", "20",
               "--dates", "4", "--format", "zarr", "--region", "all") == 0
    assert run("rs", "train", "--data", str(cubes), "--out", str(ck), "--steps", "2",
               "--batch-size", "2", "--frames", "4", "--tile", "8", "--dim", "16", "--depth",
               "1", "--heads", "2") == 0
    out = capsys.readouterr().out
    assert '"steps": 2' in out and "model.pt" in out  # --steps on train: training updates
    model = str(ck / "model.pt")
    checkpoint = str(next((ck / "checkpoints").glob("step_*.pt")))
    common = ["--checkpoint", model, "--samples", "1", "--sample-steps", "1", "--overlap", "2"]
    filled = tmp_path / "filled.zarr"
    assert run("rs", "fill", *common, "-i", str(big / "cube_0000.zarr"), "-o", str(filled),
               "--chunk", "10", "--mode", "cloud-removal") == 0
    # --steer: FlowChef towards the clear pixels while sampling; they are pasted back as without
    steered = tmp_path / "steered.nc"
    assert run("rs", "fill", *common, "--sample-steps", "2", "--input", str(cubes / "cube_0002.nc"),
               "--output", str(steered), "--mode", "cloud-removal", "--steer", "0.5") == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with load_cube(steered) as st, load_cube(cubes / "cube_0002.nc") as observed:
            attrs, out = dict(st.attrs), st.reflectance.values
            filled_px, obs = st.filled.values, observed.reflectance.values.astype(np.float32)
    assert attrs["sciflow_steer"] == 0.5 and attrs["sciflow_sample_steps"] == 2
    assert np.isfinite(out).all()
    given = ~filled_px[:, None].repeat(out.shape[1], 1)
    assert given.any() and (~given).any()
    np.testing.assert_array_equal(out[given], obs[given])
    fc = tmp_path / "fc.nc"
    assert run("rs", "forecast", *common, "-i", str(cubes / "cube_0000.nc"), "-o", str(fc),
               "--horizon", "2", "--every", "5") == 0
    ch = tmp_path / "ch.nc"
    assert run("rs", "detect-change", "--checkpoint", checkpoint, "--samples", "1",
               "--solver", "heun", "--sample-steps", "2", "-i", str(cubes / "cube_0001.nc"),
               "-o", str(ch)) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f, source = load_cube(filled), load_cube(big / "cube_0000.zarr")
        forecast = load_cube(fc)
    import xarray as xr

    with xr.open_dataset(ch) as change:
        change_attrs = dict(change.attrs)
    assert f.reflectance.shape == source.reflectance.shape
    assert f.attrs["sciflow_steer"] == "off"  # steering is off unless asked for
    assert np.isfinite(f.reflectance.values).all()
    assert forecast.sizes["time"] == 2
    step = (forecast.time.values[1] - forecast.time.values[0]).astype("timedelta64[D]")
    assert step == np.timedelta64(5, "D")
    assert change_attrs["sciflow_solver"] == "heun"
    assert "wrote" in capsys.readouterr().out


def test_steps_is_a_hidden_alias_of_sample_steps_on_the_sampling_commands(capsys):
    from sciflow.cli import build_parser

    parser, _ = build_parser()
    for command in ("fill", "forecast", "detect-change"):
        args = parser.parse_args(["rs", command, "--checkpoint", "m.pt", "-i", "a.nc", "-o",
                                  "b.nc", "--steps", "3"])
        assert args.sample_steps == 3
        assert parser.parse_args(["rs", command, "--checkpoint", "m.pt", "-i", "a.nc", "-o",
                                  "b.nc"]).sample_steps == 8
    with pytest.raises(SystemExit):
        main(["rs", "fill", "--help"])
    text = capsys.readouterr().out
    assert "--sample-steps" in text and "--steps" not in text.replace("--sample-steps", "")
    train = parser.parse_args(["rs", "train", "--data", "c", "--out", "r", "--steps", "7"])
    assert train.steps == 7  # training updates, as everywhere


def test_rs_fill_help_teaches_steering(capsys):
    with pytest.raises(SystemExit):
        main(["rs", "fill", "--help"])
    text = capsys.readouterr().out
    assert "--steer ETA" in text and "FlowChef" in text


@pytest.mark.parametrize("command", ["generate", "train", "fill", "forecast", "detect-change",
                                     "calibrate", "evaluate"])
def test_rs_help_teaches_with_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main(["rs", command, "--help"])
    assert "Example" in capsys.readouterr().out


def test_flag_defaults_come_from_the_config_and_the_spec():
    """rs train's model flags and rs generate's series flags default to None and name fields of
    Config / SentinelSeriesSpec, so no default is written twice."""
    import dataclasses

    from sciflow.cli import build_parser
    from sciflow.datasets.sentinel import SentinelSeriesSpec
    from sciflow.domains.remote_sensing import Config
    from sciflow.domains.remote_sensing.cli import _MODEL_FLAGS, _SPEC_FLAGS

    parser, _ = build_parser()
    train = parser.parse_args(["rs", "train", "--data", "c", "--out", "r"])
    generate = parser.parse_args(["rs", "generate", "-o", "g"])
    for args, table, kind in ((train, _MODEL_FLAGS, Config), (generate, _SPEC_FLAGS,
                                                               SentinelSeriesSpec)):
        names = {f.name for f in dataclasses.fields(kind)}
        for flag, field in table.items():
            assert getattr(args, flag) is None and field in names, (flag, field)
    assert train.steps is None and train.lr is None  # TrainConfig's, through train_config


def _tiny_model_file(untrained_model, path, cubes_dir):
    """An untrained tiny model (linear interpolation), standardised on the cubes in
    ``cubes_dir``, saved as a checkpoint."""
    from sciflow.domains.remote_sensing import series_from_cube, stack_series

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = stack_series([series_from_cube(load_cube(p)) for p in sorted(cubes_dir.iterdir())])
    return untrained_model(series).save(path)


def test_rs_calibrate_evaluate_and_plot(tmp_path, capsys, untrained_model):
    import json

    cubes, held = tmp_path / "cubes", tmp_path / "held"
    assert run("rs", "generate", "-o", str(cubes), "-n", "2", "--size", "8", "--dates", "4") == 0
    assert run("rs", "generate", "-o", str(held), "-n", "2", "--size", "8", "--dates", "4",
               "--region", "test", "--seed", "1") == 0
    model = _tiny_model_file(untrained_model, tmp_path / "model.pt", cubes)
    calibrated = tmp_path / "calibrated.pt"
    fast = ["--samples", "2", "--sample-steps", "1"]
    assert run("rs", "calibrate", "--checkpoint", str(model), "--data", str(held), "-o",
               str(calibrated), "--tasks", "reconstruct,forecast", "--horizon", "1", *fast) == 0
    out = capsys.readouterr().out
    skill = json.loads(out.splitlines()[-2])["spread_skill"]
    assert set(skill) == {"reconstruction", "forecasting"}
    assert all(0.5 < v["after"] < 2 for v in skill.values())
    scores = tmp_path / "scores.json"
    assert run("rs", "evaluate", "--checkpoint", str(calibrated), "--data", str(held),
               "-o", str(scores), *fast) == 0
    printed = capsys.readouterr().out
    assert "linear interpolation" in printed and "spread/skill" in printed
    report = json.loads(scores.read_text())
    assert report["task"] == "reconstruction" and report["answers"] == "truth"
    filled = tmp_path / "filled.nc"
    assert run("rs", "fill", "--checkpoint", str(calibrated), "-i", str(held / "cube_0000.nc"),
               "-o", str(filled), "--plot", *fast) == 0
    assert (tmp_path / "filled.png").stat().st_size > 10_000
    fc = tmp_path / "future.zarr"
    assert run("rs", "forecast", "--checkpoint", str(calibrated), "-i",
               str(held / "cube_0001.nc"), "-o", str(fc), "--horizon", "1", "--plot", *fast) == 0
    assert (tmp_path / "future.png").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with load_cube(filled) as f:
            assert "calibrated" in f.attrs["sciflow_uncertainty"]
            assert "sciflow rs fill --checkpoint" in f.attrs["history"]


@pytest.mark.parametrize("command", ["fill", "forecast", "detect-change", "calibrate",
                                     "evaluate"])
def test_rs_help_documents_the_cube_variables(command, capsys):
    with pytest.raises(SystemExit):
        main(["rs", command, "--help"])
    text = capsys.readouterr().out
    for name in ("cloud", "valid", "sar", "one (time, y, x) variable per band", "stackstac"):
        assert name in text, name


def test_rs_forecast_help_says_what_the_output_holds(capsys):
    with pytest.raises(SystemExit):
        main(["rs", "forecast", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "holds only the new dates" in text and "Appends" not in text


def test_rs_train_resume_continues_the_run(tmp_path, capsys):
    import json

    cubes, out = tmp_path / "cubes", tmp_path / "run"
    assert run("rs", "generate", "-o", str(cubes), "-n", "2", "--size", "8", "--dates", "4") == 0
    small = ["--data", str(cubes), "--out", str(out), "--batch-size", "2", "--frames", "4",
             "--tile", "8", "--dim", "16", "--depth", "1", "--heads", "2"]
    assert run("rs", "train", *small, "--steps", "2") == 0
    capsys.readouterr()
    assert run("rs", "train", *small, "--steps", "4", "--resume") == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert report["steps"] == 4

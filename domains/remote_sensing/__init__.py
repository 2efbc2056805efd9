"""Satellite image time series with one conditional flow: reconstruction (gap filling), cloud
removal, forecasting and semantic change detection (UniTS, arXiv 2512.04461, reimplemented).

Data are xarray cubes (time, band, y, x) as described in :mod:`sciflow.datasets.sentinel`.

>>> from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes   # doctest: +SKIP
>>> from sciflow.domains.remote_sensing import Config, load, sample, train
>>> cubes = generate_cubes(SentinelSeriesSpec(size=32), 64)
>>> model = train(cubes, Config().replace(train={"steps": 2000, "out_dir": "runs/rs"}))
>>> filled = sample(model, cubes[0], "cloud_removal")              # a cube in, a cube out
>>> steered = sample(model, cubes[0], "cloud_removal", steer=0.5)  # FlowChef steering
>>> held_out = stack_series([series_from_cube(c) for c in generate_cubes(
...     SentinelSeriesSpec(size=32, region="test"), 16, seed=1)])
>>> model = dataclasses.replace(model, calibration=fit_calibration(model, held_out))
>>> model.save("rs.pt"); load("rs.pt")                             # an honest reflectance_std

Modules (the domain shape of ``domains/README.md``): :mod:`.config` (Config), :mod:`.data`
(cubes <-> tensors, input checks), :mod:`.tasks` (the four tasks as conditionings),
:mod:`.model` (network, Model, load), :mod:`.training` (train), :mod:`.sampling` (sample,
predict_series), :mod:`.tiling`, :mod:`.steering` (FlowChef), :mod:`.cubes` (whole cubes,
writing them), :mod:`.conventions` (what outputs keep and record: CF attributes, grid
mapping, flags, history), :mod:`.calibration` (an honest ``reflectance_std``),
:mod:`.holdout` (held-out values, from a truth or self-supervised), :mod:`.uncertainty`
(spread-skill, CRPS, reliability), :mod:`.evaluation` (scores, the warning when a model is
worse than linear interpolation), :mod:`.baselines`, :mod:`.metrics`, :mod:`.figures`,
:mod:`.torchgeo`, :mod:`.cli` + :mod:`.commands` (``sciflow remote-sensing``, alias ``rs``),
:mod:`.demo`. Public names load on first use, so ``sciflow --help`` imports neither torch nor
xarray.

Names of sciflow 0.1, kept as aliases: ``RSModelSpec`` = :class:`Config` (the network fields),
``TrainOptions(...)`` -> a :class:`Config` with those training settings, ``RSModel`` =
:class:`Model` (``model.spec`` = ``model.config``), ``train_rs(data, spec, options=)`` ->
(model, result), ``load_rs`` = :func:`load`, ``build_model`` = :func:`build_network`,
``predict_series`` / ``apply_to_cube`` (what :func:`sample` runs on series / cubes); the module
``pipeline`` re-exports its old contents.
"""

from sciflow.plugins import lazy_exports

_EXPORTS = {
    "Config": ".config",
    "TASKS": ".config",
    "KIND": ".model",
    "Model": ".model",
    "load": ".model",
    "train": ".training",
    "sample": ".sampling",
    "evaluate": ".evaluation",
    # the domain's extras
    "Evaluation": ".evaluation",
    "evaluate_task": ".evaluation",
    "fit_reference": ".evaluation",
    "Reference": ".evaluation",
    "predict_series": ".sampling",
    "sample_states": ".sampling",
    "Prediction": ".sampling",
    "apply_to_cube": ".cubes",
    "write_cube": ".cubes",
    "CUBE_SUFFIXES": ".config",
    "Measurement": ".steering",
    "make_measurement": ".steering",
    "check_steer": ".steering",
    "velocity_field": ".model",
    "build_network": ".model",
    "RSNetwork": ".model",
    "SeriesBatch": ".data",
    "Standardizer": ".data",
    "CubeInputError": ".data",
    "check_observations": ".data",
    "series_from_cube": ".data",
    "stack_series": ".data",
    "hide_dates": ".data",
    "tiles_from_cube": ".data",
    "TaskBatch": ".tasks",
    "TaskOptions": ".tasks",
    "make_task": ".tasks",
    "decode_state": ".tasks",
    "Calibration": ".calibration",
    "fit_calibration": ".calibration",
    "UncalibratedSpreadWarning": ".calibration",
    "WorseThanBaselineWarning": ".evaluation",
    "Holdout": ".holdout",
    "make_holdout": ".holdout",
    "UncertaintyScores": ".uncertainty",
    "uncertainty_scores": ".uncertainty",
    "plot_result": ".figures",
    "plot_reliability": ".figures",
    "to_torchgeo_sample": ".torchgeo",
    "CubeTiles": ".torchgeo",
    # sciflow 0.1's names
    "RSModelSpec": ".config",
    "RSModel": ".model",
    "load_rs": ".model",
    "build_model": ".model",
    "train_rs": ".training",
    "TrainOptions": ".training",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

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

from sciflow.plugins import lazy_exports, public_names

_EXPORTS = {
    ".config": ("Config", "TASKS", "CUBE_SUFFIXES", "RSModelSpec"),
    ".model": (
        "KIND", "Model", "load", "velocity_field", "build_network", "RSNetwork", "RSModel",
        "load_rs", "build_model",
    ),
    ".training": ("train", "train_rs", "TrainOptions"),
    ".sampling": ("sample", "predict_series", "sample_states", "Prediction"),
    ".evaluation": (
        "evaluate", "Evaluation", "evaluate_task", "fit_reference", "Reference",
        "WorseThanBaselineWarning",
    ),
    ".cubes": ("apply_to_cube", "write_cube"),
    ".steering": ("Measurement", "make_measurement", "check_steer"),
    ".data": (
        "SeriesBatch", "Standardizer", "CubeInputError", "check_observations", "series_from_cube",
        "stack_series", "hide_dates", "tiles_from_cube",
    ),
    ".tasks": ("TaskBatch", "TaskOptions", "make_task", "decode_state"),
    ".calibration": ("Calibration", "fit_calibration", "UncalibratedSpreadWarning"),
    ".holdout": ("Holdout", "make_holdout"),
    ".uncertainty": ("UncertaintyScores", "uncertainty_scores"),
    ".figures": ("plot_result", "plot_reliability"),
    ".torchgeo": ("to_torchgeo_sample", "CubeTiles"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = public_names(_EXPORTS)

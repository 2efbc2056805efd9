"""Satellite image time series with one conditional flow: reconstruction (gap filling), cloud
removal, forecasting and semantic change detection (UniTS, arXiv 2512.04461, reimplemented).

Data are xarray cubes (time, band, y, x) as described in :mod:`sciflow.datasets.sentinel`;
:mod:`.data` turns them into tensors and tasks, :mod:`.model` sizes the spatio-temporal
transformer, :mod:`.pipeline` trains, samples, evaluates and processes whole (dask) cubes,
:mod:`.baselines` and :mod:`.metrics` score it, :mod:`.cli` is ``sciflow rs``.

Example
-------
>>> from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
>>> from sciflow.domains.remote_sensing import RSModelSpec, TrainOptions, train_rs, apply_to_cube
>>> cubes = generate_cubes(SentinelSeriesSpec(size=32), 64)                 # doctest: +SKIP
>>> model, _ = train_rs(cubes, RSModelSpec(), options=TrainOptions(steps=2000))  # doctest: +SKIP
>>> filled = apply_to_cube(model, cubes[0], "cloud_removal")                # doctest: +SKIP
>>> steered = apply_to_cube(model, cubes[0], "cloud_removal", steer=0.5)    # doctest: +SKIP
"""

from sciflow.domains.remote_sensing.data import (
    TASKS,
    SeriesBatch,
    Standardizer,
    TaskBatch,
    TaskOptions,
    hide_dates,
    make_task,
    series_from_cube,
    stack_series,
    to_torchgeo_sample,
)
from sciflow.domains.remote_sensing.model import RSModelSpec, build_model
from sciflow.domains.remote_sensing.pipeline import (
    Measurement,
    Prediction,
    RSModel,
    TrainOptions,
    apply_to_cube,
    check_steer,
    evaluate_task,
    fit_reference,
    load_rs,
    make_measurement,
    predict_series,
    sample_states,
    train_rs,
    velocity_field,
)

__all__ = [
    "TASKS",
    "SeriesBatch",
    "Standardizer",
    "TaskBatch",
    "TaskOptions",
    "hide_dates",
    "make_task",
    "series_from_cube",
    "stack_series",
    "to_torchgeo_sample",
    "RSModelSpec",
    "build_model",
    "Prediction",
    "RSModel",
    "TrainOptions",
    "apply_to_cube",
    "evaluate_task",
    "fit_reference",
    "load_rs",
    "predict_series",
    "train_rs",
    "Measurement",
    "make_measurement",
    "sample_states",
    "velocity_field",
    "check_steer",
]

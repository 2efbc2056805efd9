"""Whole cubes in, cubes out: a task on an xarray cube, eager or dask-backed, and writing it.

A dask-backed cube (``load_cube(path, chunks=...)``) is processed block by block of its chunk
grid, each block read with an ``overlap`` margin, so the result is a lazy cube that
:func:`write_cube` streams to disk one block at a time: a scene larger than memory works. Inside
a block the series is tiled as in :mod:`.tiling`. Every block's result is checked for NaN / inf
before it is written; an error leaves the output as it was (the write goes to a temporary
sibling, :func:`sciflow.outputs.claim_output`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sciflow.datasets.sentinel import class_codes
from sciflow.errors import InputError
from sciflow.outputs import ClaimedOutput, ensure_finite
from sciflow.progress import progress as progress_bar
from sciflow.resources import check_memory

from .calibration import CALIBRATED_TASKS, UncalibratedSpreadWarning, uncertainty_note
from .config import CUBE_SUFFIXES, SAMPLE_STEPS, SAMPLES, SOLVER
from .conventions import carry_metadata, provenance
from .data import CubeInputError, check_bands, check_cube, check_observations, series_from_cube
from .model import Model
from .sampling import Prediction, check_solver, ensemble_bytes, predict_series
from .steering import check_steer
from .tasks import TaskOptions, check_task
from .tiling import check_overlap

__all__ = ["apply_to_cube", "write_cube", "CUBE_SUFFIXES"]


Arrays = dict[str, tuple[tuple[str, ...], Any]]


def _output_vars(pred: Prediction, task: str, horizon: int) -> Arrays:
    """Prediction of one series (B = 1) as named arrays with dims."""
    out: Arrays = {}
    sl = slice(-horizon, None) if task == "forecasting" else slice(None)
    if task == "change_detection":
        out["landcover"] = (("time", "y", "x"), pred.labels[0].numpy().astype(np.int8))
        out["class_probability"] = (("time", "class", "y", "x"),
                                    pred.class_probability[0].numpy().astype(np.float32))
        out["change_probability"] = (("time", "y", "x"),
                                     pred.change_probability[0].numpy().astype(np.float32))
    else:
        out["reflectance"] = (("time", "band", "y", "x"),
                              pred.reflectance[0, sl].numpy().astype(np.float32))
        out["reflectance_std"] = (("time", "band", "y", "x"),
                                  pred.reflectance_std[0, sl].numpy().astype(np.float32))
        out["filled"] = (("time", "y", "x"), (~pred.given[0, sl]).numpy())
    return out


def _future_cube(cube: xr.Dataset, dates: Sequence[Any]) -> xr.Dataset:
    """The cube (reflectance, valid, cloud, sar) with empty, not-acquired dates appended."""
    try:
        new = np.asarray(dates, dtype="datetime64[ns]")
    except ValueError as err:
        raise InputError(f"forecast_dates={list(dates)!r}: expected dates such as "
                         f"'2024-07-01' ({err})") from None
    last = cube["time"].values.max()
    if new.ndim != 1 or (np.diff(new.astype(np.int64)) <= 0).any() or (new <= last).any():
        raise CubeInputError(f"forecast dates must be increasing and after the cube's last date "
                             f"{np.datetime_as_string(last, unit='D')}, got {new}")
    keep = [v for v in ("reflectance", "valid", "cloud", "sar") if v in cube]
    base = cube[keep].drop_vars("doy", errors="ignore")
    tail = base.isel(time=[0] * len(new)).assign_coords(time=new)
    tail = tail.assign({name: xr.full_like(var, False if var.dtype == bool else np.nan)
                        for name, var in tail.data_vars.items()})
    return check_cube(xr.concat([base, tail], dim="time"))


def _schema(task: str, model: Model, n_times: int) -> dict[str, tuple[tuple[str, ...],
                                                                    tuple[int, ...], Any]]:
    """Names, dims, leading shapes and dtypes of :func:`_output_vars` (for lazy arrays)."""
    cfg = model.config
    if task == "change_detection":
        k = len(cfg.classes)
        return {"landcover": (("time", "y", "x"), (n_times,), np.int8),
                "class_probability": (("time", "class", "y", "x"), (n_times, k), np.float32),
                "change_probability": (("time", "y", "x"), (n_times,), np.float32)}
    c = len(cfg.bands)
    return {"reflectance": (("time", "band", "y", "x"), (n_times, c), np.float32),
            "reflectance_std": (("time", "band", "y", "x"), (n_times, c), np.float32),
            "filled": (("time", "y", "x"), (n_times,), np.bool_)}


def _lazy_blocks(cube: xr.Dataset, run: Callable[[xr.Dataset, int, str], Arrays],
                 schema: dict[str, tuple[tuple[str, ...], tuple[int, ...], Any]], *, seed: int,
                 margin: int, progress: bool | None) -> Arrays:
    """Lazy dask arrays: one delayed job per (y, x) chunk of the cube, each reading its chunk
    plus a ``margin`` from the (lazy) cube and cropping the margin off its result."""
    import dask
    import dask.array as da

    ychunks = cube["reflectance"].chunksizes["y"]
    xchunks = cube["reflectance"].chunksizes["x"]
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    y_edges = np.concatenate([[0], np.cumsum(ychunks)]).astype(int)
    x_edges = np.concatenate([[0], np.cumsum(xchunks)]).astype(int)
    bar = progress_bar(total=len(ychunks) * len(xchunks), desc="rs cube", unit="block",
                       enabled=progress)

    def job(ya: int, yb: int, xa: int, xb: int, y0: int, y1: int, x0: int, x1: int,
            block_seed: int) -> dict[str, np.ndarray]:
        window = cube.isel(y=slice(ya, yb), x=slice(xa, xb)).load()
        res = run(window, block_seed, f"block y {y0}:{y1}, x {x0}:{x1}")
        bar.update(1)
        return {k: a[..., y0 - ya:y1 - ya, x0 - xa:x1 - xa] for k, (_, a) in res.items()}

    rows: dict[str, list[list[Any]]] = {k: [] for k in schema}
    for i in range(len(ychunks)):
        row: dict[str, list[Any]] = {k: [] for k in schema}
        for j in range(len(xchunks)):
            y0, y1, x0, x1 = y_edges[i], y_edges[i + 1], x_edges[j], x_edges[j + 1]
            args = (max(0, y0 - margin), min(ny, y1 + margin), max(0, x0 - margin),
                    min(nx, x1 + margin), y0, y1, x0, x1, seed + 1000 * i + j)
            d = dask.delayed(job, pure=False)(*(int(a) for a in args))
            for k, (_, lead, dtype) in schema.items():
                row[k].append(da.from_delayed(d[k], shape=lead + (y1 - y0, x1 - x0),
                                              dtype=dtype))
        for k in schema:
            rows[k].append(row[k])
    return {k: (schema[k][0], da.block(rows[k])) for k in schema}


def apply_to_cube(model: Model, cube: xr.Dataset | xr.DataArray, task: str, *,
                  samples: int = SAMPLES, steps: int = SAMPLE_STEPS, solver: str = SOLVER,
                  seed: int = 0, overlap: int | None = None, use_sar: bool = True,
                  forecast_dates: Sequence[Any] | None = None, steer: float | None = None,
                  progress: bool | None = False, name: str = "the cube",
                  command: str | None = None) -> xr.Dataset:
    """Run a task on a cube and return the result as a cube (lazy when the input is dask-backed).

    reconstruction / cloud_removal: ``reflectance`` (all dates, gaps filled; cloud_removal also
    reads the cloudy values and SAR), ``reflectance_std``, ``filled`` (pixels predicted).
    forecasting: the same variables for the ``forecast_dates`` only (the output holds just
    the new dates; ``xr.concat([cube, result], "time")`` joins them to the past).
    change_detection: ``landcover`` (time, y, x) with CF flag attributes (the cube's own class
    values when its ``landcover`` has ``flag_values``), ``class_probability``
    (time, class, y, x), ``change_probability`` (time, y, x) and ``change`` (label differs
    from the previous date; its own flag attributes).
    The input's attributes, coordinates and CF grid mapping are carried over and the run is
    described in the attributes (:mod:`.conventions`: a ``history`` line, ``sciflow_*``
    settings). ``reflectance_std`` is the ensemble spread scaled by the model's calibration
    when it has one (:mod:`.calibration`), the raw spread otherwise (then a
    :class:`~.calibration.UncalibratedSpreadWarning`).
    ``steer``: FlowChef step size eta in (0, 1) that steers sampling towards the cube's clear
    pixels (see :func:`~.sampling.predict_series`), None for the plain ODE; recorded in the
    attributes. ``progress``: report progress over the blocks of a lazy cube. ``name``: how
    the cube is called in error messages (e.g. its file). ``command``: the line recorded in
    ``history`` (default: the Python call).

    Everything is checked before any block is computed: the arguments, the cube's format, and
    that it holds something to work from (:func:`~.data.check_observations`: finite
    reflectance, and clear pixels for every task but cloud removal).
    """
    task = check_task(task)
    steer = check_steer(steer)  # now: a lazy cube would only fail when computed
    for arg, value in (("samples", samples), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{arg}={value!r}: expected an integer >= 1")
    solver = check_solver(solver)
    if steer is not None and solver != "euler":
        raise InputError(f"steering (FlowChef) integrates with Euler steps, got "
                         f"solver={solver!r}; use solver='euler'")
    cfg = model.config
    overlap = check_overlap(overlap, cfg.tile)
    if task == "change_detection" and not cfg.classes:
        raise InputError("this model was trained without land-cover classes: no change detection")
    cube = check_cube(cube, what=name)
    horizon = 0
    if task == "forecasting":
        if not forecast_dates:
            raise InputError("forecasting needs forecast_dates (the future dates to predict)")
        horizon = len(forecast_dates)
        if horizon >= cfg.frames:
            raise InputError(f"forecast_dates: at most {cfg.frames - 1} dates can be forecast at "
                             f"once by this model (its window is {cfg.frames} dates), got "
                             f"{horizon}")
    try:
        check_bands(cube, cfg.bands)
    except CubeInputError as err:
        raise CubeInputError(f"{name}: {err}") from None
    check_observations(cube, bands=cfg.bands, need_clear=task != "cloud_removal", what=name)
    source = cube  # the metadata of the input, before future dates are appended
    if task == "forecasting":
        cube = _future_cube(cube, forecast_dates)
    if task in CALIBRATED_TASKS and (model.calibration is None
                                     or task not in model.calibration.params):
        warnings.warn(f"{name}: reflectance_std will be the raw ensemble spread of an "
                      "uncalibrated model, typically several times smaller than its errors; "
                      "calibrate the model on held-out cubes (sciflow rs calibrate, or "
                      "fit_calibration) for an honest uncertainty", UncalibratedSpreadWarning,
                      stacklevel=2)
    use_sar = use_sar and bool(cfg.sar) and "sar" in cube
    options = TaskOptions(drop_dates=0, horizon=max(horizon, 1), use_sar=use_sar)
    sar = cfg.sar if use_sar else ()  # () reads no SAR: the model then runs optical-only

    def run(window: xr.Dataset, block_seed: int, where: str, show: bool | None = False
            ) -> Arrays:
        s = series_from_cube(window, bands=cfg.bands, sar=sar, classes=cfg.classes or None)
        pred = predict_series(model, s, task, options=options, samples=samples, steps=steps,
                              solver=solver, seed=block_seed, overlap=overlap, steer=steer,
                              progress=show)
        arrays = _output_vars(pred, task, horizon)
        for var, (_, values) in arrays.items():
            ensure_finite(values, f"{task} of {where}: {var!r}", axis_name="date",
                          hint="Try more --sample-steps or another --solver")
        return arrays

    lazy = cube["reflectance"].chunks is not None
    if lazy:  # each block is sampled at once, with its margin: refuse blocks that do not fit
        sizes = cube["reflectance"].chunksizes
        bh = min(max(sizes["y"]) + 2 * overlap, cube.sizes["y"])
        bw = min(max(sizes["x"]) + 2 * overlap, cube.sizes["x"])
        check_memory(ensemble_bytes(cfg, samples=samples, series=1, dates=cube.sizes["time"],
                                    height=bh, width=bw),
                     f"{samples} samples of a {bh}x{bw}-px block of {cube.sizes['time']} dates",
                     name="--chunk / samples")
    if not lazy:
        arrays = run(cube, seed, "the cube", progress)
    else:
        n_out = horizon if task == "forecasting" else cube.sizes["time"]
        arrays = _lazy_blocks(cube, run, _schema(task, model, n_out), seed=seed, margin=overlap,
                              progress=progress)
    settings = provenance(task=task, checkpoint=model.checkpoint, digest=model.digest, seed=seed,
                          solver=solver, steps=steps, samples=samples, overlap=overlap,
                          use_sar=use_sar and task != "reconstruction", steer=steer,
                          uncertainty=uncertainty_note(model, samples, task))
    if command is None:
        command = (f"sciflow.domains.remote_sensing.sample(model, cube, {task!r}, samples={samples}"
                   f", steps={steps}, solver={solver!r}, seed={seed}, overlap={overlap}"
                   + (f", steer={steer}" if steer is not None else "") + ")")
    return _as_cube(arrays, cube, source, task, model, horizon, settings, command)


def _as_cube(arrays: Arrays, cube: xr.Dataset, source: xr.Dataset, task: str, model: Model,
             horizon: int, settings: dict[str, Any], command: str) -> xr.Dataset:
    """The output cube on ``cube``'s grid (future dates appended when forecasting), with the
    metadata of the input ``source``."""
    cfg = model.config
    times = cube["time"].values[-horizon:] if task == "forecasting" else cube["time"].values
    coords: dict[str, Any] = {"time": times, "y": cube["y"].values, "x": cube["x"].values}
    if task == "change_detection":
        coords["class"] = list(cfg.classes)
    else:
        coords["band"] = list(cfg.bands)
    out = xr.Dataset({k: (dims, a) for k, (dims, a) in arrays.items()}, coords=coords)
    codes = class_codes(source) if task == "change_detection" else None
    if task == "change_detection":
        labels = out["landcover"]
        prev = labels.shift(time=1)
        out["change"] = ((labels != prev) & prev.notnull()).drop_attrs()
        if codes is not None:  # indices -> the cube's own class values (flag_values)
            table = np.asarray(codes, dtype=np.int16 if max(codes) > 127 else np.int8)
            out["landcover"] = labels.copy(data=table[np.asarray(labels.values, dtype=np.int64)]
                                           if labels.chunks is None else
                                           labels.data.map_blocks(lambda b: table[b],
                                                                  dtype=table.dtype))
    return carry_metadata(out, source, settings=settings, command=command, class_codes=codes)


def write_cube(cube: xr.Dataset, out: ClaimedOutput) -> Path:
    """Write a (possibly lazy) result cube to a claimed output (netCDF or zarr by its suffix).

    Dask-backed variables are computed one block at a time (the synchronous scheduler: bounded
    memory) into a temporary sibling that replaces the output only when complete; a zarr store
    is written as a new store and swapped in. Claim the output before the work:
    ``out = claim_output(path, inputs=[...], overwrite=..., suffixes=CUBE_SUFFIXES)``.
    """
    import dask

    from sciflow.datasets.sentinel import save_cube

    with dask.config.set(scheduler="synchronous"):
        return out.write(lambda tmp: save_cube(cube, tmp))

"""The handlers of ``sciflow rs`` (:mod:`.cli` holds the parsers): each checks its arguments
and claims its outputs (:func:`sciflow.outputs.claim_output`) before it imports torch or reads a
cube, and reports progress while it works (:func:`sciflow.progress.progress`).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import shlex
from pathlib import Path
from typing import Any

from sciflow.cli_args import set_threads, train_config
from sciflow.errors import InputError
from sciflow.outputs import ClaimedOutput, claim_output

from .config import CUBE_SUFFIXES, Config

__all__ = ["generate_cmd", "train_cmd", "fill_cmd", "forecast_cmd", "detect_cmd",
           "calibrate_cmd", "evaluate_cmd"]

#: the flags of `rs generate`: flag dest -> SentinelSeriesSpec field (defaults: the spec's)
_SPEC_FLAGS = {"size": "size", "dates": "n_dates", "cloud_cover": "cloud_cover",
               "change_rate": "change_rate", "region": "region", "crs": "crs"}

#: the model flags of `rs train`: flag dest -> Config field (defaults: the Config's)
_MODEL_FLAGS = {"frames": "frames", "tile": "tile", "dim": "dim", "depth": "depth",
                "heads": "heads", "batch_size": "batch_size"}


def _cube_paths(patterns: list[str], name: str = "--data") -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        p = Path(pattern)
        if p.is_dir() and p.suffix != ".zarr":
            found = sorted(q for q in p.iterdir() if q.suffix in CUBE_SUFFIXES)
            if not found:
                raise InputError(f"{name} {pattern!r}: the folder holds no cube "
                                 f"({', '.join(CUBE_SUFFIXES)} files)")
            paths += found
        elif any(ch in pattern for ch in "*?["):
            found = [Path(q) for q in sorted(glob.glob(pattern))]
            if not found:
                raise InputError(f"{name} {pattern!r}: the pattern matches no file")
            paths += found
        elif not p.exists():
            raise InputError(f"{name} {pattern!r} does not exist")
        else:
            paths.append(p)
    return paths


def _open(path: Path, *, chunks: dict[str, int] | None = None) -> Any:
    """load_cube with its CubeError naming the file."""
    from sciflow.datasets.sentinel import CubeError, load_cube

    from .data import CubeInputError

    try:
        return load_cube(path, chunks=chunks)
    except CubeError as err:
        raise CubeInputError(f"{str(path)!r}: {err}") from None
    except (OSError, ValueError) as err:  # not a netCDF / zarr file at all
        raise CubeInputError(f"{str(path)!r} cannot be read as a cube "
                             f"({type(err).__name__}: {err})") from None


def _check_device(device: str | None) -> None:
    """--device names a device this machine has (imports torch: call it in a handler)."""
    if device is not None:
        from sciflow.devices import resolve_device

        resolve_device(device)


def generate_cmd(args: argparse.Namespace) -> int:
    from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cube, save_cube
    from sciflow.resources import check_memory

    given = {field: getattr(args, flag) for flag, field in _SPEC_FLAGS.items()
             if getattr(args, flag) is not None}
    spec = SentinelSeriesSpec(**given)
    # per pixel and date ~16 values (bands, truth, SAR, masks, labels), float32, ~4 live copies
    check_memory(spec.size ** 2 * spec.n_dates * 16 * 4 * 4, f"a {spec.size}x{spec.size}-px "
                 f"cube of {spec.n_dates} dates", name="--size")
    folder = Path(args.output)
    with contextlib.ExitStack() as stack:
        claims = [stack.enter_context(claim_output(
            folder / f"cube_{i:04d}.{args.format}", overwrite=args.overwrite,
            suffixes=(f".{args.format}",))) for i in range(args.n)]
        from sciflow.progress import progress

        bar = progress(total=len(claims), desc="rs generate", unit="cube")
        for i, out in enumerate(claims):
            cube = generate_cube(spec, seed=args.seed * 100_003 + i)
            print(out.write(lambda tmp, cube=cube: save_cube(cube, tmp)))
            bar.update(1)
        bar.close()
    return 0


def train_cmd(args: argparse.Namespace) -> int:
    paths = _cube_paths(args.data)
    bands = tuple(b.strip() for b in args.bands.split(",") if b.strip()) if args.bands else None
    if args.bands is not None and not bands:
        raise InputError(f"--bands {args.bands!r}: expected comma-separated names, e.g. "
                         "B02,B03,B04,B08")
    sizes = {f: getattr(args, d) for d, f in _MODEL_FLAGS.items() if getattr(args, d) is not None}
    shape = Config(acor=not args.no_acor, stm=not args.no_stm, **sizes)  # checks the sizes now
    _check_device(args.device)
    with claim_output(Path(args.out) / "model.pt", inputs=paths, name="--out",
                      overwrite=args.overwrite or args.resume) as out:
        set_threads(args)
        from sciflow.outputs import dumps_json
        from sciflow.resources import check_memory

        from .data import check_observations
        from .model import estimate_bytes
        from .training import train

        check_memory(estimate_bytes(shape, tiles=shape.batch_size, training=True),
                     f"a training batch of {shape.batch_size} windows of {shape.frames} dates x "
                     f"{shape.tile}x{shape.tile} px", name="--batch-size / --tile")
        cubes = []
        for path in paths:
            cube = _open(path)
            check_observations(cube, bands=bands, what=str(path))
            cubes.append(cube.load())
            cube.close()  # the values are in memory: no file stays open during training
        first = cubes[0]
        sar = () if args.no_sar or "sar" not in first else tuple(
            str(p) for p in first["polarization"].values)
        classes: tuple[str, ...] = ()
        if not args.no_classes and "landcover" in first:
            from sciflow.datasets.sentinel import class_names

            classes = class_names(first) or tuple(
                f"class{k}" for k in range(int(first["landcover"].max()) + 1))
        base = shape.replace(bands=bands or tuple(str(b) for b in first["band"].values),
                             classes=classes, sar=sar)
        config = base.replace(train=train_config(args, base.train))
        model, result = train(cubes, config, resume=args.resume, return_result=True)
        out.write(lambda tmp: model.save(tmp))
        print(dumps_json({"steps": result.step, "final_loss": result.final_loss,
                          "seconds": round(result.wall_time, 1),
                          "parameters": sum(p.numel() for p in model.net.parameters())},
                         indent=None).strip())
        print(f"model: {out.path}")
        print(f"checkpoint: {result.checkpoint}")
    return 0


def _dates(text: str) -> list[str]:
    import numpy as np

    dates = [d.strip() for d in text.split(",") if d.strip()]
    try:
        for d in dates:
            np.datetime64(d, "D")
    except ValueError:
        raise InputError(f"--dates {text!r}: expected comma-separated dates such as "
                         "2024-07-01,2024-07-11") from None
    if not dates:
        raise InputError(f"--dates {text!r}: expected at least one date")
    return dates


def command_line(args: argparse.Namespace, command: str) -> str:
    """The effective command of a sampling run, every setting spelled out (for ``history``)."""
    parts = ["sciflow", "rs", command, "--checkpoint", args.checkpoint, "--input", args.input,
             "--output", args.output]
    if command == "fill":
        parts += ["--mode", args.mode]
    if command == "forecast":
        parts += (["--dates", args.dates] if args.dates else
                  ["--horizon", str(args.horizon), "--every", str(args.every)])
    parts += ["--samples", str(args.samples), "--solver", args.solver, "--sample-steps",
              str(args.sample_steps), "--seed", str(args.seed), "--chunk", str(args.chunk)]
    if args.overlap is not None:
        parts += ["--overlap", str(args.overlap)]
    if getattr(args, "steer", None) is not None:
        parts += ["--steer", str(args.steer)]
    if args.no_sar:
        parts.append("--no-sar")
    return shlex.join(parts)


def _claim_plot(args: argparse.Namespace, stack: contextlib.ExitStack) -> ClaimedOutput | None:
    if not getattr(args, "plot", False):
        return None
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("--plot needs matplotlib (pip install matplotlib), or pass --no-plot")
    from .figures import figure_path

    return stack.enter_context(claim_output(figure_path(args.output),
                                            inputs=[args.input, args.checkpoint],
                                            overwrite=args.overwrite, suffixes=(".png",),
                                            name="--plot"))


def _apply(args: argparse.Namespace, task: str, command: str) -> int:
    from .steering import check_steer

    steer = check_steer(getattr(args, "steer", None))  # before anything is read
    if steer is not None and args.solver != "euler":
        raise InputError(f"--steer works with Euler steps; got --solver {args.solver} "
                         "(use --solver euler)")
    dates = _dates(args.dates) if getattr(args, "dates", "") else None
    for name, path in (("--checkpoint", args.checkpoint), ("--input", args.input)):
        if not Path(path).exists():
            raise InputError(f"{name} {path!r} does not exist")
    _check_device(args.device)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(claim_output(args.output, inputs=[args.input, args.checkpoint],
                                               overwrite=args.overwrite, suffixes=CUBE_SUFFIXES))
        figure = _claim_plot(args, stack)
        set_threads(args)
        import numpy as np

        from .cubes import apply_to_cube, write_cube
        from .model import load

        model = load(args.checkpoint, device=args.device or "cpu")
        chunks = {"y": args.chunk, "x": args.chunk} if args.chunk else None
        cube = _open(Path(args.input), chunks=chunks)
        if task == "forecasting" and dates is None:
            last = cube["time"].values.max().astype("datetime64[D]")
            dates = [str(last + np.timedelta64(args.every * (k + 1), "D"))
                     for k in range(args.horizon)]
        result = apply_to_cube(model, cube, task, samples=args.samples, steps=args.sample_steps,
                               solver=args.solver, seed=args.seed, overlap=args.overlap,
                               use_sar=not args.no_sar, forecast_dates=dates, steer=steer,
                               progress=None, name=f"--input {args.input!r}",
                               command=command_line(args, command))
        path = write_cube(result, out)
        if figure is not None:
            from .figures import plot_result

            written = _open(path, chunks=chunks)  # the written values, never a recomputation
            figure.write(lambda tmp: plot_result(cube, written, task, tmp))
            written.close()
            print(f"figure: {figure.path}")
        cube.close()
    print(f"wrote {path} ({', '.join(result.data_vars)})")
    return 0


def fill_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "cloud_removal" if args.mode == "cloud-removal" else "reconstruction",
                  "fill")


def forecast_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "forecasting", "forecast")


def detect_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "change_detection", "detect-change")




_TASK_NAMES = {"reconstruct": "reconstruction", "cloud-removal": "cloud_removal",
               "forecast": "forecasting"}


def _task_list(text: str) -> tuple[str, ...]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in _TASK_NAMES]
    if bad or not names:
        raise InputError(f"--tasks {text!r}: expected comma-separated names from "
                         f"{', '.join(_TASK_NAMES)}")
    return tuple(dict.fromkeys(_TASK_NAMES[t] for t in names))


def _held_out(args: argparse.Namespace, paths: list[Path], model: Any) -> list[Any]:
    """The cubes as series for ``model``, one SeriesBatch per cube size (each cube is loaded
    and closed; SAR is read when the model and the cube have it, unless --no-sar)."""
    from sciflow.progress import progress

    from .data import check_observations, series_from_cube, stack_series

    cfg = model.config
    groups: dict[tuple[int, ...], list[Any]] = {}
    for path in progress(paths, desc="rs read", unit="cube"):
        cube = _open(path)
        check_observations(cube, bands=cfg.bands, what=str(path))
        sar = cfg.sar if cfg.sar and "sar" in cube and not args.no_sar else ()
        s = series_from_cube(cube.load(), bands=cfg.bands, sar=sar)
        cube.close()
        groups.setdefault(tuple(s.shape[1:]), []).append(s)
    return [stack_series(g) for g in groups.values()]


def calibrate_cmd(args: argparse.Namespace) -> int:
    tasks = _task_list(args.tasks)
    paths = _cube_paths(args.data)
    if not Path(args.checkpoint).exists():
        raise InputError(f"--checkpoint {args.checkpoint!r} does not exist")
    _check_device(args.device)
    with claim_output(args.output, inputs=[*paths, args.checkpoint], overwrite=args.overwrite,
                      suffixes=(".pt",)) as out:
        set_threads(args)
        import dataclasses

        from sciflow.outputs import dumps_json

        from .calibration import fit_calibration
        from .model import load

        model = load(args.checkpoint, device=args.device or "cpu")
        series = _held_out(args, paths, model)
        cal = fit_calibration(model, series, tasks=tasks, samples=args.samples,
                              steps=args.sample_steps, solver=args.solver, seed=args.seed,
                              horizon=args.horizon, drop_dates=args.drop_dates, progress=None)
        calibrated = dataclasses.replace(model, calibration=cal)
        out.write(lambda tmp: calibrated.save(tmp))
    print(dumps_json({"spread_skill": {t: {"before": b, "after": a}
                                       for t, (b, a) in cal.skill.items()},
                      "fitted_on": cal.fitted_on}, indent=None).strip())
    print(f"calibrated model: {out.path}")
    return 0


def evaluate_cmd(args: argparse.Namespace) -> int:
    task = _task_list(args.task)[0]
    paths = _cube_paths(args.data)
    if not Path(args.checkpoint).exists():
        raise InputError(f"--checkpoint {args.checkpoint!r} does not exist")
    _check_device(args.device)
    with contextlib.ExitStack() as stack:
        out = None if args.output is None else stack.enter_context(claim_output(
            args.output, inputs=[*paths, args.checkpoint], overwrite=args.overwrite,
            suffixes=(".json",)))
        set_threads(args)
        import dataclasses

        import torch

        from sciflow.outputs import dumps_json

        from .evaluation import evaluate
        from .holdout import make_holdout
        from .model import load
        from .tasks import TaskOptions

        model = load(args.checkpoint, device=args.device or "cpu")
        results = []
        for k, series in enumerate(_held_out(args, paths, model)):
            hold = make_holdout(series, task, drop_dates=args.drop_dates,
                                generator=torch.Generator().manual_seed(args.seed + k))
            given = dataclasses.replace(hold.series, truth=hold.truth)
            results.append(evaluate(model, given, task, known=hold.known,
                                    options=TaskOptions(drop_dates=0, horizon=args.horizon),
                                    samples=args.samples, steps=args.sample_steps,
                                    solver=args.solver, seed=args.seed, progress=None))
        report = {"task": task, "checkpoint": args.checkpoint,
                  "answers": hold.source, "groups": [r.to_dict() for r in results]}
        text = dumps_json(report)
        if out is not None:
            out.write(lambda tmp: Path(tmp).write_text(text))
    for r in results:
        for name, sc in r.scores.items():
            print(f"{name:22s} RMSE {sc.rmse:.4f}  PSNR {sc.psnr:5.2f} dB  MAE {sc.mae:.4f}")
        if r.uncertainty is not None:
            u = r.uncertainty
            print(f"reflectance_std: spread/skill {u.spread_skill:.2f} (mean std {u.mean_std:.4f}"
                  f" / RMSE {u.rmse:.4f}, pooled over {u.values} filled values), CRPS "
                  f"{u.crps:.4f}")
        for line in r.warnings:
            print(f"warning: {line}")
    if out is not None:
        print(f"wrote {out.path}")
    return 0


"""``sciflow remote-sensing`` (alias ``rs``): train the flow model and apply it to cubes.

    sciflow rs generate       synthetic Sentinel-2-like cubes to try things on
    sciflow rs train          one model for gap filling, cloud removal, forecasting, change detection
    sciflow rs fill           reconstruct missing / cloudy pixels of a cube (--steer: FlowChef)
    sciflow rs forecast       predict future dates of a cube
    sciflow rs detect-change  per-date land-cover maps and change probabilities

Cubes follow :mod:`sciflow.datasets.sentinel` (reflectance (time, band, y, x), optional cloud,
valid, sar, landcover) as netCDF (.nc) or zarr (.zarr). Every handler checks its arguments and
claims its outputs (:func:`sciflow.outputs.claim_output`: never an input, never an existing file
without --overwrite, written aside and moved into place) before it imports torch or reads a cube.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
from pathlib import Path
from typing import Any

from sciflow.cli_args import (
    add_device_argument,
    add_output_arguments,
    add_solver_arguments,
    add_threads_argument,
    add_train_arguments,
    nonnegative_int,
    positive_int,
    set_threads,
    train_config,
)
from sciflow.errors import InputError
from sciflow.outputs import claim_output
from sciflow.plugins import Domain

from .config import CUBE_SUFFIXES, SAMPLE_STEPS, SAMPLES, SOLVER, Config

DOMAIN = Domain(
    name="remote-sensing", aliases=("rs",), order=50, requires=("xarray",),
    summary="satellite image time series: gap filling, cloud removal, forecasting, change detection",
    package="sciflow.domains.remote_sensing", cli="sciflow.domains.remote_sensing.cli:configure",
    demo="sciflow.domains.remote_sensing.demo:demo",
)

__all__ = ["configure", "DOMAIN"]

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


def _generate_cmd(args: argparse.Namespace) -> int:
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
        for i, out in enumerate(claims):
            cube = generate_cube(spec, seed=args.seed * 100_003 + i)
            print(out.write(lambda tmp, cube=cube: save_cube(cube, tmp)))
    return 0


def _train_cmd(args: argparse.Namespace) -> int:
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


def _apply(args: argparse.Namespace, task: str) -> int:
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
    with claim_output(args.output, inputs=[args.input, args.checkpoint],
                      overwrite=args.overwrite, suffixes=CUBE_SUFFIXES) as out:
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
                               progress=None, name=f"--input {args.input!r}")
        path = write_cube(result, out)
        cube.close()
    print(f"wrote {path} ({', '.join(result.data_vars)})")
    return 0


def _fill_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "cloud_removal" if args.mode == "cloud-removal" else "reconstruction")


def _forecast_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "forecasting")


def _detect_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "change_detection")


def _common_apply(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="a model written by `sciflow rs train` (OUT/model.pt or a checkpoint)")
    p.add_argument("-i", "--input", required=True, help="the input cube (.nc or .zarr)")
    add_output_arguments(p, suffixes=CUBE_SUFFIXES, what=what)
    p.add_argument("--samples", type=positive_int, default=SAMPLES,
                   help=f"ensemble members; their spread is written as uncertainty "
                        f"(default {SAMPLES})")
    add_solver_arguments(p, solver=SOLVER, steps=SAMPLE_STEPS)
    p.add_argument("--steps", dest="sample_steps", type=positive_int, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # sciflow 0.1's name of --sample-steps
    p.add_argument("--overlap", type=nonnegative_int, default=None,
                   help="pixels of blended overlap between tiles, below the model's tile size "
                        "(default: 8, or a quarter of smaller tiles)")
    p.add_argument("--chunk", type=nonnegative_int, default=256,
                   help="process the cube in blocks of this many pixels per side, streamed to "
                        "the output (0: all at once; default 256)")
    p.add_argument("--no-sar", action="store_true", help="ignore SAR even if model and cube have it")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the noise draws")
    add_device_argument(p)
    add_threads_argument(p)


def _add_generate(sub: Any, fmt: type) -> None:
    g = sub.add_parser("generate", help="write synthetic Sentinel-2-like cubes with truth",
                       description="Synthetic series over a real Sentinel-2 template (spyndex) "
                                   "with phenology, clouds, shadows, SAR and land-cover changes; "
                                   "writes OUTPUT/cube_0000.nc, ... (refuses existing files "
                                   "without --overwrite). Flags left out take the defaults of "
                                   "sciflow.datasets.sentinel.SentinelSeriesSpec.\nExample:\n"
                                   "  sciflow rs generate -o cubes -n 16 --size 64",
                       formatter_class=fmt)
    g.add_argument("-o", "--output", "--out", dest="output", required=True, metavar="FOLDER",
                   help="folder for cube_XXXX.nc / .zarr")
    g.add_argument("--overwrite", action="store_true", help="replace cubes that exist")
    g.add_argument("-n", type=positive_int, default=16, help="number of cubes (default 16)")
    g.add_argument("--size", type=positive_int, default=None,
                   help="pixels per side, >= 4 (10 m pixels)")
    g.add_argument("--dates", type=positive_int, default=None,
                   help="acquisitions in the year, 2 to 73")
    g.add_argument("--cloud-cover", type=float, default=None,
                   help="mean cloud fraction in [0, 1)")
    g.add_argument("--change-rate", type=float, default=None,
                   help="land-cover change events per 32x32 px, >= 0")
    g.add_argument("--region", default=None, choices=["train", "test", "all"],
                   help="template columns to draw from (train/test are disjoint)")
    g.add_argument("--crs", default=None, help="CRS string to store, e.g. EPSG:32723")
    g.add_argument("--format", default="nc", choices=["nc", "zarr"])
    g.add_argument("--seed", type=nonnegative_int, default=0)
    g.set_defaults(func=_generate_cmd)


def _add_train(sub: Any, fmt: type) -> None:
    t = sub.add_parser("train", help="train one model for all four tasks",
                       description="Cubes are cut into tiles x frames windows. With "
                                   "clear_reflectance the loss covers every pixel; without it, "
                                   "clear pixels hidden from the model are the targets. Writes "
                                   "OUT/model.pt, OUT/checkpoints/ and OUT/metrics.jsonl.\n"
                                   "Example:\n  sciflow rs train --data cubes --out runs/rs "
                                   "--steps 2000\n  sciflow rs train --data 'cubes/*.zarr' --out "
                                   "runs/rs --steps 4000 --resume",
                       formatter_class=fmt)
    t.add_argument("--data", nargs="+", required=True,
                   help="cube files (.nc, .zarr), folders of them or globs")
    t.add_argument("--bands", default=None,
                   help="comma-separated band names (default: the first cube's)")
    m = t.add_argument_group("model (defaults: sciflow.domains.remote_sensing.Config)")
    m.add_argument("--frames", type=positive_int, default=None,
                   help=f"dates per window (default {Config.frames})")
    m.add_argument("--tile", type=positive_int, default=None,
                   help=f"pixels per tile side, a multiple of {Config.patch_size} "
                        f"(default {Config.tile})")
    m.add_argument("--dim", type=positive_int, default=None,
                   help=f"token width (default {Config.dim})")
    m.add_argument("--depth", type=positive_int, default=None,
                   help=f"transformer blocks (default {Config.depth})")
    m.add_argument("--heads", type=positive_int, default=None,
                   help=f"attention heads (default {Config.heads})")
    m.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"windows per update (default {Config.batch_size})")
    m.add_argument("--no-acor", action="store_true", help="disable condition injection (ACor)")
    m.add_argument("--no-stm", action="store_true", help="disable the attention bias (STM)")
    m.add_argument("--no-sar", action="store_true", help="optical only, even if cubes have SAR")
    m.add_argument("--no-classes", action="store_true",
                   help="no land-cover channels (no change detection)")
    add_train_arguments(t)
    t.add_argument("--overwrite", action="store_true", help="replace OUT/model.pt if it exists")
    t.set_defaults(func=_train_cmd)


_STEER_HELP = ("FlowChef step size in (0, 1) that steers every sampling step towards the cube's "
               "clear pixels: the residual there shrinks by 1 - 2 ETA per step, so 0.5 matches "
               "them exactly (Euler steps only). Here those pixels are also in the model's "
               "condition and are pasted back afterwards, so steering only makes the trajectory "
               "agree with them while sampling; a well-trained model gains little from it (it "
               "pays off for pixels observed but kept out of the condition: "
               "predict_series(steer=, measured=, withhold=) in Python). Default: off, the "
               "plain ODE")


def configure(p: argparse.ArgumentParser) -> None:
    """Fill the ``sciflow remote-sensing`` (``rs``) group."""
    fmt = argparse.RawDescriptionHelpFormatter
    p.description = ("One conditional flow-matching model (UniTS-style spatio-temporal "
                     "transformer) for Sentinel-2-like cubes (time, band, y, x) in netCDF or "
                     "zarr.\nTry:\n  sciflow rs generate -o cubes -n 64\n"
                     "  sciflow rs train --data cubes --out runs/rs --steps 2000\n"
                     "  sciflow rs fill --checkpoint runs/rs/model.pt -i cubes/cube_0000.nc "
                     "-o filled.nc")
    sub = p.add_subparsers(dest="rs_command", metavar="<rs-command>")
    _add_generate(sub, fmt)
    _add_train(sub, fmt)

    f = sub.add_parser("fill", help="fill gaps (reconstruction) or remove clouds",
                       description="reconstruct: fill every pixel not observed clear from the "
                                   "clear ones. cloud-removal: also read the cloudy values and "
                                   "SAR. Writes reflectance (0-1), reflectance_std (the "
                                   "ensemble spread) and filled (pixels predicted).\n"
                                   "--steer ETA adds FlowChef steering (Patel et al. 2024): at "
                                   "every Euler step the model's estimate of the clean series, "
                                   "x1_hat = x + (1 - t) v, is pulled onto the clear pixels, "
                                   "x1_hat <- x1_hat - 2 ETA M (x1_hat - y), without "
                                   "backpropagating the network (same number of network calls)."
                                   "\nExample:\n  sciflow rs fill --checkpoint model.pt -i "
                                   "scene.zarr -o filled.zarr --mode cloud-removal\n"
                                   "  sciflow rs fill --checkpoint model.pt -i scene.nc "
                                   "-o filled.nc --steer 0.5 --sample-steps 16",
                       formatter_class=fmt)
    _common_apply(f, "the filled cube")
    f.add_argument("--mode", default="reconstruct", choices=["reconstruct", "cloud-removal"])
    f.add_argument("--steer", type=float, default=None, metavar="ETA", help=_STEER_HELP)
    f.set_defaults(func=_fill_cmd)

    fc = sub.add_parser("forecast", help="predict future dates",
                        description="Appends the future dates and generates them from the "
                                    "past ones; writes reflectance, reflectance_std and filled "
                                    "for those dates only. Example:\n  sciflow rs forecast "
                                    "--checkpoint model.pt -i past.nc -o future.nc --horizon 3 "
                                    "--every 10",
                        formatter_class=fmt)
    _common_apply(fc, "the forecast dates as a cube")
    fc.add_argument("--dates", default="",
                    help="comma-separated future dates, e.g. 2024-07-01,2024-07-11")
    fc.add_argument("--horizon", type=positive_int, default=3,
                    help="number of dates (without --dates; default 3)")
    fc.add_argument("--every", type=positive_int, default=10,
                    help="days between them (without --dates; default 10)")
    fc.set_defaults(func=_forecast_cmd)

    d = sub.add_parser("detect-change", help="land-cover maps per date and change probabilities",
                       description="Generates the class-map sequence with the reflectance; "
                                   "writes landcover, class_probability, change_probability "
                                   "and change.\nExample:\n  sciflow rs detect-change "
                                   "--checkpoint model.pt -i cube.nc -o change.nc",
                       formatter_class=fmt)
    _common_apply(d, "the change maps as a cube")
    d.set_defaults(func=_detect_cmd)

"""``sciflow rs``: train the remote-sensing flow model and apply it to netCDF / zarr cubes.

    sciflow rs generate       synthetic Sentinel-2-like cubes to try things on
    sciflow rs train          one model for gap filling, cloud removal, forecasting, change detection
    sciflow rs fill           reconstruct missing / cloudy pixels of a cube (--steer: FlowChef)
    sciflow rs forecast       predict future dates of a cube
    sciflow rs detect-change  per-date land-cover maps and change probabilities

Cubes follow :mod:`sciflow.datasets.sentinel` (reflectance (time, band, y, x), optional cloud,
valid, sar, landcover). Inputs are opened lazily in ``--chunk`` x ``--chunk`` blocks and results
are streamed to disk, so scenes larger than memory work.
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np

from sciflow.plugins import Domain

DOMAIN = Domain(
    name='remote-sensing', aliases=('rs',), order=50, requires=('xarray',),
    summary='satellite image time series: gap filling, cloud removal, forecasting, change detection',
    package="sciflow.domains.remote_sensing", cli="sciflow.domains.remote_sensing.cli:configure",
    demo="sciflow.domains.remote_sensing.demo:demo",
)

__all__ = ["configure", "DOMAIN"]


def _cube_paths(patterns: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        p = Path(pattern)
        if p.is_dir() and p.suffix != ".zarr":
            paths += sorted(q for q in p.iterdir() if q.suffix in (".nc", ".zarr"))
        elif any(ch in pattern for ch in "*?["):
            paths += [Path(q) for q in sorted(glob.glob(pattern))]
        else:
            paths.append(p)
    if not paths:
        raise FileNotFoundError(f"no cube found in {patterns} (expected .nc or .zarr files)")
    return paths


def _generate_cmd(args: argparse.Namespace) -> int:
    from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cube, save_cube

    spec = SentinelSeriesSpec(size=args.size, n_dates=args.dates, cloud_cover=args.cloud_cover,
                              change_rate=args.change_rate, region=args.region, crs=args.crs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        path = save_cube(generate_cube(spec, seed=args.seed * 100_003 + i),
                         out / f"cube_{i:04d}.{args.format}")
        print(path)
    return 0


def _train_cmd(args: argparse.Namespace) -> int:
    import torch

    from sciflow.datasets.sentinel import load_cube
    from sciflow.domains.remote_sensing.model import RSModelSpec
    from sciflow.domains.remote_sensing.pipeline import TrainOptions, train_rs

    torch.set_num_threads(args.threads)
    cubes = [load_cube(p) for p in _cube_paths(args.data)]
    first = cubes[0]
    bands = tuple(args.bands.split(",")) if args.bands else tuple(str(b) for b in first["band"].values)
    sar = () if args.no_sar or "sar" not in first else tuple(
        str(p) for p in first["polarization"].values)
    classes: tuple[str, ...] = ()
    if not args.no_classes and "landcover" in first:
        from sciflow.datasets.sentinel import class_names

        classes = class_names(first) or tuple(
            f"class{k}" for k in range(int(first["landcover"].max()) + 1))
    spec = RSModelSpec(bands=bands, classes=classes, sar=sar, frames=args.frames, tile=args.tile,
                       dim=args.dim, depth=args.depth, heads=args.heads, acor=not args.no_acor,
                       stm=not args.no_stm)
    options = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed, out_dir=args.out)
    model, result = train_rs(cubes, spec, options=options)
    print(json.dumps({"steps": result.step, "final_loss": result.final_loss,
                      "seconds": round(result.wall_time, 1),
                      "parameters": sum(p.numel() for p in model.net.parameters())}))
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _apply(args: argparse.Namespace, task: str, forecast_dates: list[str] | None = None) -> int:
    import dask
    import torch

    from sciflow.datasets.sentinel import load_cube, save_cube
    from sciflow.domains.remote_sensing.pipeline import apply_to_cube, check_steer, load_rs

    steer = check_steer(getattr(args, "steer", None))  # before any loading
    torch.set_num_threads(args.threads)
    model = load_rs(args.checkpoint)
    chunks = {"y": args.chunk, "x": args.chunk} if args.chunk else None
    cube = load_cube(args.input, chunks=chunks)
    out = apply_to_cube(model, cube, task, samples=args.samples, steps=args.steps,
                        seed=args.seed, overlap=args.overlap, use_sar=not args.no_sar,
                        forecast_dates=forecast_dates, steer=steer)
    with dask.config.set(scheduler="synchronous"):  # one block at a time: bounded memory
        path = save_cube(out, args.output)
    print(f"wrote {path} ({', '.join(out.data_vars)})")
    return 0


def _fill_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "cloud_removal" if args.mode == "cloud-removal" else "reconstruction")


def _forecast_cmd(args: argparse.Namespace) -> int:
    from sciflow.datasets.sentinel import load_cube

    if args.dates:
        dates = [d.strip() for d in args.dates.split(",") if d.strip()]
    else:
        if args.horizon < 1 or args.every < 1:
            raise ValueError("give --dates, or --horizon >= 1 and --every >= 1 days")
        last = load_cube(args.input)["time"].values.max().astype("datetime64[D]")
        dates = [str(last + np.timedelta64(args.every * (k + 1), "D"))
                 for k in range(args.horizon)]
    return _apply(args, "forecasting", forecast_dates=dates)


def _detect_cmd(args: argparse.Namespace) -> int:
    return _apply(args, "change_detection")


def _common_apply(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a model written by `sciflow rs train`")
    p.add_argument("--input", required=True, help="input cube (.nc or .zarr)")
    p.add_argument("--output", required=True, help="output cube (.nc or .zarr)")
    p.add_argument("--samples", type=int, default=4,
                   help="ensemble members (their spread is written as uncertainty)")
    p.add_argument("--steps", type=int, default=8, help="Euler steps of the flow ODE")
    p.add_argument("--overlap", type=int, default=8, help="pixels of overlap between tiles")
    p.add_argument("--chunk", type=int, default=256,
                   help="process the cube in blocks of this many pixels per side (0: all at once)")
    p.add_argument("--no-sar", action="store_true", help="ignore SAR even if model and cube have it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")


def configure(p: argparse.ArgumentParser) -> None:
    """Add ``sciflow rs generate|train|fill|forecast|detect-change``."""
    fmt = argparse.RawDescriptionHelpFormatter
    p.description = ("One conditional flow-matching model (UniTS-style spatio-temporal "
                    "transformer) for Sentinel-2-like cubes (time, band, y, x) in netCDF or zarr."
                    "\nTry:\n  sciflow rs generate --out cubes -n 64\n"
                    "  sciflow rs train --data cubes --out runs/rs --steps 2000\n"
                    "  sciflow rs fill --checkpoint runs/rs/checkpoints/step_00002000.pt "
                    "--input cubes/cube_0000.nc --output filled.nc")
    sub = p.add_subparsers(dest="rs_command", metavar="<rs-command>")

    g = sub.add_parser("generate", help="write synthetic Sentinel-2-like cubes with truth",
                       description="Synthetic series over a real Sentinel-2 template (spyndex) "
                                   "with phenology, clouds, shadows, SAR and land-cover changes."
                                   "\nExample:\n  sciflow rs generate --out cubes -n 16 --size 64",
                       formatter_class=fmt)
    g.add_argument("--out", required=True, help="folder for cube_XXXX.nc / .zarr")
    g.add_argument("-n", type=int, default=16, help="number of cubes")
    g.add_argument("--size", type=int, default=32, help="pixels per side")
    g.add_argument("--dates", type=int, default=10, help="acquisitions per year")
    g.add_argument("--cloud-cover", type=float, default=0.4, help="mean cloud fraction")
    g.add_argument("--change-rate", type=float, default=0.5,
                   help="land-cover change events per 32x32 px")
    g.add_argument("--region", default="train", choices=["train", "test", "all"],
                   help="template columns to draw from (train/test are disjoint)")
    g.add_argument("--crs", default=None, help="CRS string to store, e.g. EPSG:32723")
    g.add_argument("--format", default="nc", choices=["nc", "zarr"])
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=_generate_cmd)

    t = sub.add_parser("train", help="train one model for all four tasks",
                       description="Cubes are cut into tiles x frames windows. With "
                                   "clear_reflectance the loss covers every pixel; without it, "
                                   "clear pixels hidden from the model are the targets.\n"
                                   "Example:\n  sciflow rs train --data cubes --out runs/rs "
                                   "--steps 2000",
                       formatter_class=fmt)
    t.add_argument("--data", nargs="+", required=True, help="cube files, folders or globs")
    t.add_argument("--out", required=True, help="folder for checkpoints and metrics.jsonl")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--bands", default="", help="comma-separated band names (default: the cube's)")
    t.add_argument("--frames", type=int, default=10, help="dates per window")
    t.add_argument("--tile", type=int, default=32, help="pixels per tile side")
    t.add_argument("--dim", type=int, default=64)
    t.add_argument("--depth", type=int, default=4)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--no-acor", action="store_true", help="disable condition injection (ACor)")
    t.add_argument("--no-stm", action="store_true", help="disable the attention bias (STM)")
    t.add_argument("--no-sar", action="store_true", help="optical only, even if cubes have SAR")
    t.add_argument("--no-classes", action="store_true",
                   help="no land-cover channels (no change detection)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1, help="torch threads")
    t.set_defaults(func=_train_cmd)

    f = sub.add_parser("fill", help="fill gaps (reconstruction) or remove clouds",
                       description="reconstruct: fill every pixel not observed clear from the "
                                   "clear ones. cloud-removal: also read the cloudy values and "
                                   "SAR. Writes reflectance, reflectance_std and filled.\n"
                                   "--steer ETA adds FlowChef steering (Patel et al. 2024): at "
                                   "every Euler step the model's estimate of the clean series, "
                                   "x1_hat = x + (1 - t) v, is pulled onto the clear pixels, "
                                   "x1_hat <- x1_hat - 2 ETA M (x1_hat - y), without "
                                   "backpropagating the network (same number of network calls)."
                                   "\nExample:\n  sciflow rs fill --checkpoint model.pt --input "
                                   "scene.zarr --output filled.zarr --mode cloud-removal\n"
                                   "  sciflow rs fill --checkpoint model.pt --input scene.nc "
                                   "--output filled.nc --steer 0.5",
                       formatter_class=fmt)
    _common_apply(f)
    f.add_argument("--mode", default="reconstruct", choices=["reconstruct", "cloud-removal"])
    f.add_argument("--steer", type=float, default=None, metavar="ETA",
                   help="FlowChef step size in (0, 1) that steers every sampling step towards "
                        "the cube's clear pixels: the residual there shrinks by 1 - 2 ETA per "
                        "step, so 0.5 matches them exactly. Here those pixels are also in the "
                        "model's condition and are pasted back afterwards, so steering only "
                        "makes the trajectory agree with them while sampling; a well-trained "
                        "model gains little from it (it pays off for pixels observed but kept "
                        "out of the condition: predict_series(steer=, measured=, withhold=) in "
                        "Python). Default: off, the plain ODE")
    f.set_defaults(func=_fill_cmd)

    fc = sub.add_parser("forecast", help="predict future dates",
                        description="Appends the future dates and generates them from the "
                                    "past ones. Example:\n  sciflow rs forecast --checkpoint "
                                    "model.pt --input past.nc --output future.nc --horizon 3 "
                                    "--every 10",
                        formatter_class=fmt)
    _common_apply(fc)
    fc.add_argument("--dates", default="", help="comma-separated dates, e.g. 2024-07-01,2024-07-11")
    fc.add_argument("--horizon", type=int, default=3, help="number of dates (without --dates)")
    fc.add_argument("--every", type=int, default=10, help="days between them (without --dates)")
    fc.set_defaults(func=_forecast_cmd)

    d = sub.add_parser("detect-change", help="land-cover maps per date and change probabilities",
                       description="Generates the class-map sequence with the reflectance; "
                                   "writes landcover, class_probability, change_probability "
                                   "and change.\nExample:\n  sciflow rs detect-change "
                                   "--checkpoint model.pt --input cube.nc --output change.nc",
                       formatter_class=fmt)
    _common_apply(d)
    d.set_defaults(func=_detect_cmd)

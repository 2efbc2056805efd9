"""``sciflow remote-sensing`` (alias ``rs``): train the flow model and apply it to cubes.

    sciflow rs generate       synthetic Sentinel-2-like cubes to try things on
    sciflow rs train          one model for gap filling, cloud removal, forecasting, change detection
    sciflow rs calibrate      fit the model's uncertainty (reflectance_std) on held-out cubes
    sciflow rs evaluate       score a model against linear interpolation / persistence
    sciflow rs fill           reconstruct missing / cloudy pixels of a cube (--steer: FlowChef)
    sciflow rs forecast       predict future dates of a cube
    sciflow rs detect-change  per-date land-cover maps and change probabilities

Cubes follow :mod:`sciflow.datasets.sentinel` (reflectance (time, band, y, x), optional cloud,
valid, sar, landcover; or one variable per band, stackstac's layout, an SCL) as netCDF (.nc) or
zarr (.zarr). This module holds the parsers; the handlers are in :mod:`.commands`, and each
checks its arguments and claims its outputs before it imports torch or reads a cube.
"""

from __future__ import annotations

import argparse
from typing import Any

from sciflow.cli_args import (
    FlagRow,
    add_compute_arguments,
    add_config_flags,
    add_output_arguments,
    add_plot_argument,
    add_solver_arguments,
    add_train_arguments,
    field_defaults,
    nonnegative_int,
    positive_int,
)
from sciflow.plugins import Domain

from . import commands
from .commands import _MODEL_FLAGS, _SPEC_FLAGS  # noqa: F401 (the flag tables, tested here)
from .config import CUBE_SUFFIXES, SAMPLE_STEPS, SAMPLES, SOLVER, Config

DOMAIN = Domain(
    name="remote-sensing", aliases=("rs",), order=50, requires=("xarray",),
    summary="satellite image time series: gap filling, cloud removal, forecasting, change detection",
    package="sciflow.domains.remote_sensing", cli="sciflow.domains.remote_sensing.cli:configure",
    demo="sciflow.domains.remote_sensing.demo:demo",
)

__all__ = ["configure", "DOMAIN"]

#: what an input cube may hold (the epilog of every command that reads cubes)
CUBE_HELP = """input cubes (netCDF .nc or zarr .zarr; see sciflow.datasets.sentinel):
  reflectance  (time, band, y, x) surface reflectance 0-1 as observed, clouds included,
               NaN where nothing was acquired; integers are read as DN / 10000. Also read:
               one (time, y, x) variable per band named B02, B03, ... or blue, green, red,
               nir, ... (odc-stac), a DataArray (time, band, y, x) with a band coordinate of
               names (stackstac); bands are matched to the model's by name.
  cloud        (time, y, x) bool, optional: cloud or cloud shadow. These pixels are not used
               as clear observations: reconstruct fills them, cloud-removal also reads their
               (cloudy) values. Absent: every acquired pixel counts as clear.
  valid        (time, y, x) bool, optional: data acquired. False = no data (filled like a
               gap). Absent: wherever reflectance is finite.
  scl / SCL    a Sentinel-2 Scene Classification band or variable, optional: read as cloud
               (classes 3, 8, 9, 10) and valid (not 0, 1) when those are absent.
  sar          (time, polarization, y, x) dB, optional: Sentinel-1 backscatter (VV, VH),
               used by cloud-removal, forecasting (past dates) and detect-change when the
               model was trained with SAR; --no-sar ignores it.
  landcover    (time, y, x) int, optional: class labels with CF flag_values / flag_meanings
               (training and change detection).
outputs keep the input's global and variable attributes, coordinates and CF grid mapping
(a spatial_ref coordinate or a grid-mapping data variable), and add a history line and
sciflow_* attributes with the settings (checkpoint and digest, seed, solver, steps, samples)."""


def _model_and_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="a model written by `sciflow rs train` or `rs calibrate` (OUT/model.pt "
                        "or a checkpoint)")
    p.add_argument("--samples", type=positive_int, default=SAMPLES,
                   help=f"ensemble members (default {SAMPLES}); their spread, calibrated when "
                        "the model is, is written as reflectance_std")
    add_solver_arguments(p, solver=SOLVER, steps=SAMPLE_STEPS)
    p.add_argument("--steps", dest="sample_steps", type=positive_int, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # sciflow 0.1's name of --sample-steps
    p.add_argument("--no-sar", action="store_true", help="ignore SAR even if model and cube have it")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the noise draws")
    add_compute_arguments(p)


def _common_apply(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("-i", "--input", required=True, help="the input cube (.nc or .zarr)")
    add_output_arguments(p, suffixes=CUBE_SUFFIXES, what=what)
    _model_and_sampling(p)
    p.add_argument("--overlap", type=nonnegative_int, default=None,
                   help="pixels of blended overlap between tiles, below the model's tile size "
                        "(default: 8, or a quarter of smaller tiles)")
    p.add_argument("--chunk", type=nonnegative_int, default=256,
                   help="process the cube in blocks of this many pixels per side, streamed to "
                        "the output (0: all at once; default 256)")


def _add_plot(p: argparse.ArgumentParser) -> None:
    add_plot_argument(p, what="OUTPUT's name with .png: observed, predicted and reflectance_std "
                              "of one band and date, colourbars in reflectance units")


#: ``rs generate`` flags that set a SentinelSeriesSpec field (_SPEC_FLAGS; None: the spec's default)
_SPEC_FLAG_ROWS: tuple[FlagRow, ...] = (
    ("size", {"type": positive_int}, "pixels per side, >= 4 (10 m pixels)"),
    ("dates", {"type": positive_int}, "acquisitions in the year, 2 to 73"),
    ("cloud_cover", {"type": float}, "mean cloud fraction in [0, 1)"),
    ("change_rate", {"type": float}, "land-cover change events per 32x32 px, >= 0"),
    ("region", {"choices": ["train", "test", "all"]},
     "template columns to draw from (train/test are disjoint)"),
    ("crs", {}, "CRS string to store, e.g. EPSG:32723"),
)
#: ``rs train`` flags that set the Config field of their name (_MODEL_FLAGS; None: Config's)
_MODEL_FLAG_ROWS: tuple[FlagRow, ...] = (
    ("frames", {"type": positive_int}, "dates per window (default {default})"),
    ("tile", {"type": positive_int},
     f"pixels per tile side, a multiple of {Config.patch_size} (default {{default}})"),
    ("dim", {"type": positive_int}, "token width (default {default})"),
    ("depth", {"type": positive_int}, "transformer blocks (default {default})"),
    ("heads", {"type": positive_int}, "attention heads (default {default})"),
    ("batch_size", {"type": positive_int}, "windows per update (default {default})"),
)


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
    add_config_flags(g, _SPEC_FLAG_ROWS)
    g.add_argument("--format", default="nc", choices=["nc", "zarr"])
    g.add_argument("--seed", type=nonnegative_int, default=0)
    g.set_defaults(func=commands.generate_cmd)


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
    add_config_flags(m, _MODEL_FLAG_ROWS, field_defaults(Config), unset=True)
    m.add_argument("--no-acor", action="store_true", help="disable condition injection (ACor)")
    m.add_argument("--no-stm", action="store_true", help="disable the attention bias (STM)")
    m.add_argument("--no-sar", action="store_true", help="optical only, even if cubes have SAR")
    m.add_argument("--no-classes", action="store_true",
                   help="no land-cover channels (no change detection)")
    add_train_arguments(t)
    t.add_argument("--overwrite", action="store_true", help="replace OUT/model.pt if it exists")
    t.set_defaults(func=commands.train_cmd)


def _held_out_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", nargs="+", required=True,
                   help="held-out cube files (.nc, .zarr), folders of them or globs, not used "
                        "in training; with clear_reflectance it is the answer, else their own "
                        "clear pixels under the next date's clouds are hidden and scored")
    _model_and_sampling(p)
    p.add_argument("--horizon", type=positive_int, default=3,
                   help="forecast dates scored (default 3)")
    p.add_argument("--drop-dates", type=nonnegative_int, default=2,
                   help="whole dates also hidden for reconstruction (default 2)")


def _add_calibrate(sub: Any, fmt: type) -> None:
    c = sub.add_parser("calibrate", help="calibrate reflectance_std on held-out cubes",
                       description="The raw ensemble spread of a flow model is several times "
                                   "smaller than its errors. This fits, per task and band, "
                                   "sigma^2 = (a s)^2 + (b0 + b1 g / 30 d)^2 (s the spread, g "
                                   "the days to the nearest observation) by maximum likelihood "
                                   "on held-out cubes, sampling as fill / forecast will, and "
                                   "writes the model with it; fill and forecast then write "
                                   "the calibrated reflectance_std. Prints the spread-skill "
                                   "ratio (mean std / RMSE) before and after.\nExample:\n"
                                   "  sciflow rs calibrate --checkpoint runs/rs/model.pt --data "
                                   "held_out/ -o runs/rs/calibrated.pt",
                       epilog=CUBE_HELP, formatter_class=fmt)
    add_output_arguments(c, suffixes=(".pt",), what="the calibrated model")
    _held_out_arguments(c)
    c.add_argument("--tasks", default="reconstruct,cloud-removal,forecast",
                   help="comma-separated: reconstruct, cloud-removal, forecast (default: all)")
    c.set_defaults(func=commands.calibrate_cmd)


def _add_evaluate(sub: Any, fmt: type) -> None:
    e = sub.add_parser("evaluate", help="score a model against its trivial baseline",
                       description="Scores one task on held-out cubes: the model, linear "
                                   "interpolation and last / closest observation (forecast: "
                                   "persistence), RMSE / PSNR / MAE, and how honest "
                                   "reflectance_std is (spread-skill ratio, CRPS). Warns when "
                                   "the model scores worse than linear interpolation "
                                   "(persistence).\nExample:\n  sciflow rs evaluate "
                                   "--checkpoint model.pt --data held_out/ --task cloud-removal "
                                   "-o scores.json",
                       epilog=CUBE_HELP, formatter_class=fmt)
    e.add_argument("--task", default="reconstruct",
                   choices=["reconstruct", "cloud-removal", "forecast"])
    e.add_argument("-o", "--output", default=None, help="also write the scores (strict JSON)")
    e.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    _held_out_arguments(e)
    e.set_defaults(func=commands.evaluate_cmd)


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
    _add_calibrate(sub, fmt)
    _add_evaluate(sub, fmt)

    f = sub.add_parser("fill", help="fill gaps (reconstruction) or remove clouds",
                       description="reconstruct: fill every pixel not observed clear from the "
                                   "clear ones. cloud-removal: also read the cloudy values and "
                                   "SAR. Writes reflectance (0-1; clear pixels kept, the "
                                   "rest the ensemble mean), reflectance_std (its uncertainty: "
                                   "the ensemble spread, calibrated when the model was passed "
                                   "through `rs calibrate`) and filled (pixels predicted).\n"
                                   "--steer ETA adds FlowChef steering (Patel et al. 2024): at "
                                   "every Euler step the model's estimate of the clean series, "
                                   "x1_hat = x + (1 - t) v, is pulled onto the clear pixels, "
                                   "x1_hat <- x1_hat - 2 ETA M (x1_hat - y), without "
                                   "backpropagating the network (same number of network calls)."
                                   "\nExample:\n  sciflow rs fill --checkpoint model.pt -i "
                                   "scene.zarr -o filled.zarr --mode cloud-removal\n"
                                   "  sciflow rs fill --checkpoint model.pt -i scene.nc "
                                   "-o filled.nc --steer 0.5 --sample-steps 16 --no-plot",
                       epilog=CUBE_HELP, formatter_class=fmt)
    _common_apply(f, "the filled cube")
    _add_plot(f)
    f.add_argument("--mode", default="reconstruct", choices=["reconstruct", "cloud-removal"])
    f.add_argument("--steer", type=float, default=None, metavar="ETA", help=_STEER_HELP)
    f.set_defaults(func=commands.fill_cmd)

    fc = sub.add_parser("forecast", help="predict future dates",
                        description="Generates future dates from the past ones. The output "
                                    "holds only the new dates (reflectance, reflectance_std, "
                                    "filled), with the input's attributes and grid mapping; "
                                    "join it to the past with xarray: xr.concat([past, future],"
                                    " 'time').\nExample:\n  sciflow rs forecast "
                                    "--checkpoint model.pt -i past.nc -o future.nc --horizon 3 "
                                    "--every 10",
                        epilog=CUBE_HELP, formatter_class=fmt)
    _common_apply(fc, "the forecast dates as a cube")
    _add_plot(fc)
    fc.add_argument("--dates", default="",
                    help="comma-separated future dates, e.g. 2024-07-01,2024-07-11")
    fc.add_argument("--horizon", type=positive_int, default=3,
                    help="number of dates (without --dates; default 3)")
    fc.add_argument("--every", type=positive_int, default=10,
                    help="days between them (without --dates; default 10)")
    fc.set_defaults(func=commands.forecast_cmd)

    d = sub.add_parser("detect-change", help="land-cover maps per date and change probabilities",
                       description="Generates the class-map sequence with the reflectance; "
                                   "writes landcover, class_probability, change_probability "
                                   "and change.\nExample:\n  sciflow rs detect-change "
                                   "--checkpoint model.pt -i cube.nc -o change.nc",
                       epilog=CUBE_HELP, formatter_class=fmt)
    _common_apply(d, "the change maps as a cube")
    d.set_defaults(func=commands.detect_cmd)

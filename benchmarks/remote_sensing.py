"""Remote-sensing benchmark: one flow model, four tasks, against per-pixel baselines.

Held-out synthetic Sentinel-2-like series (sciflow.datasets.sentinel over the spyndex template;
test windows from template columns disjoint from training) scored on

* reconstruction of missing dates and cloud-masked pixels (2 whole dates removed, 40% cloud);
* cloud removal at heavy cloud cover (80%), the model with and without the SAR auxiliary;
* forecasting of the last 3 of 10 dates;
* semantic change detection (class-map sequence; change rate 2 events per 32x32 px);

with PSNR / SSIM / RMSE / MAE / SAM (+ CRPS of the ensemble) or mIoU / BC / SC / SCS, against
last / closest observation and linear interpolation (gap filling, cloud removal), persistence and
climatology (forecasting) and a per-date centroid classifier on linearly interpolated spectra
(change detection), with a warning line when the model is worse than linear interpolation
(persistence). The calibration of reflectance_std (spread-skill, CRPS, coverage, reliability)
is benchmarks/remote_sensing_calibration.py. Also: training time and peak memory, tiles per second at inference, and an
ablation of ACor and STM (four smaller models, identical short schedules).

    python benchmarks/remote_sensing.py             # ~20 CPU-minutes on one thread
    python benchmarks/remote_sensing.py --quick     # a smoke run (minutes), not for the record
    python benchmarks/remote_sensing.py --only calibration   # the calibration section alone,
                                                    # on a smaller model trained for it

Writes benchmarks/results/remote_sensing.md (or --out).
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import torch
from remote_sensing_calibration import calibration_section, small_model
from reporting import mean_std

from sciflow.datasets.sentinel import (
    SentinelSeriesSpec,
    generate_cube,
    generate_cubes,
    load_cube,
    load_template,
    save_cube,
)
from sciflow.domains.remote_sensing import (
    Config,
    TaskOptions,
    apply_to_cube,
    evaluate_task,
    fit_reference,
    hide_dates,
    predict_series,
    series_from_cube,
    stack_series,
    train,
)
from sciflow.domains.remote_sensing.evaluation import WorseThanBaselineWarning
from sciflow.domains.remote_sensing.metrics import ChangeScores, ImageScores

PAPER_MARGIN = {"reconstruction": 9.3, "cloud_removal": 7.7}  # UniTS over linear interpolation, dB


def series(spec: SentinelSeriesSpec, n: int, seed: int):
    return stack_series([series_from_cube(c) for c in generate_cubes(spec, n, seed=seed)])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def image_table(scores: dict[str, ImageScores]) -> list[str]:
    lines = ["| method | PSNR dB | SSIM | RMSE | MAE | SAM deg | CRPS |",
             "|---|---|---|---|---|---|---|"]
    for name, s in scores.items():
        crps = f"{s.crps:.4f}" if s.crps is not None else "(= MAE)"
        lines.append(f"| {name} | {s.psnr:.2f} | {s.ssim:.4f} | {s.rmse:.4f} | {s.mae:.4f} | "
                     f"{s.sam:.2f} | {crps} |")
    return lines


def change_table(scores: dict[str, ChangeScores]) -> list[str]:
    lines = ["| method | mIoU | BC | SC | SCS | accuracy |", "|---|---|---|---|---|---|"]
    for name, s in scores.items():
        lines.append(f"| {name} | {s.miou:.2f} | {s.bc:.2f} | {s.sc:.2f} | {s.scs:.2f} | "
                     f"{s.accuracy:.2f} |")
    return lines


def ablation_rows(ablation: dict[str, list[tuple]]) -> list[str]:
    """Markdown rows: per variant, mean ± std over seeds and the paired gain over 'neither'."""
    base = ablation["neither"]
    rows = []
    for name, runs in ablation.items():
        gains = [mean_std([run[k].psnr - ref[k].psnr for run, ref in zip(runs, base)], 2)
                 if name != "neither" else "-" for k in (2, 3)]
        rows.append(
            f"| {name} | {runs[0][0] / 1e3:.0f} k | {mean_std([r[1] for r in runs], 4)} | "
            f"{mean_std([r[2].psnr for r in runs], 2)} | {mean_std([r[2].ssim for r in runs], 4)} | "
            f"{mean_std([r[3].psnr for r in runs], 2)} | {mean_std([r[3].ssim for r in runs], 4)} | "
            f"{gains[0]} | {gains[1]} |")
    return rows


def splice(path: Path, section: list[str]) -> None:
    """Put ``section`` (starting with its "## " heading) into the results file at ``path``:
    replacing the section of that heading, else before "## Notes", else at the end."""
    heading = section[0]
    lines = path.read_text().splitlines() if path.exists() else []
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        lines[start:end] = section
    elif "## Notes" in lines:
        i = lines.index("## Notes")
        lines[i:i] = section
    else:
        lines += ["", *section]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000, help="training steps of the main model")
    p.add_argument("--ablation-steps", type=int, default=800)
    p.add_argument("--ablation-seeds", type=int, default=3,
                   help="training seeds per ablation variant (mean and spread are reported)")
    p.add_argument("--train", type=int, default=384, help="training series")
    p.add_argument("--test", type=int, default=32, help="held-out series per task")
    p.add_argument("--samples", type=int, default=4, help="ensemble members")
    p.add_argument("--ode-steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    p.add_argument("--only", choices=["calibration"], default=None,
                   help="calibration: train the smaller calibration model (--calibration-steps), "
                        "measure the calibration section and splice it into --out, leaving "
                        "the other sections as they are")
    p.add_argument("--calibration-steps", type=int, default=1500,
                   help="training steps of the smaller model of --only calibration")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "remote_sensing.md"))
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.ablation_steps, args.train, args.test = 20, 10, 32, 4
        args.calibration_steps = 20
    torch.set_num_threads(args.threads)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    log: list[str] = []

    def say(msg: str) -> None:
        print(msg, flush=True)
        log.append(msg)

    size, dates = 32, 10
    train_series = series(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.5),
                          args.train, 0)
    ref = fit_reference(train_series, 5)
    test_rec_full = series(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.4,
                                              region="test"), args.test, 1)
    test_rec, _ = hide_dates(test_rec_full, 2, generator=torch.Generator().manual_seed(0))
    test_cr = series(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.8,
                                        region="test"), args.test, 2)
    test_fc = series(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.4,
                                        region="test"), args.test, 3)
    test_cd = series(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.4,
                                        change_rate=2.0, region="test"), args.test, 4)
    say(f"data ready ({time.perf_counter() - wall0:.0f} s)")
    tests = {"reconstruction": test_rec_full, "cloud_removal": test_cr, "forecasting": test_fc}
    fit_spec = SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.4, region="test")
    cmd = "python benchmarks/remote_sensing.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.only == "calibration":
        small, checkpoints, described, tmp = small_model(train_series,
                                                          steps=args.calibration_steps, say=say)
        section = calibration_section(
            small, tests=tests, fit_spec=fit_spec, samples=args.samples, steps=args.ode_steps,
            out_dir=Path(args.out).parent, checkpoints=checkpoints, described=described,
            trained_steps=args.calibration_steps, say=say, n_fit=4 if args.quick else 16)
        tmp.cleanup()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        section[1:1] = ["", f"Command: `{cmd.strip()}` ({wall / 60:.1f} min wall, "
                            f"{cpu / 60:.1f} min CPU, {args.threads} thread(s), torch "
                            f"{torch.__version__}, {platform.machine()}, 2-core shared CPU)."]
        section += ["Log: " + "; ".join(log), ""]
        splice(Path(args.out), section)
        print(f"wrote the calibration section into {args.out}")
        return 0

    spec = Config(frames=dates, tile=size, dim=64, depth=3, heads=4, batch_size=8)
    rss_before = rss_mb()
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    model, result = train(train_series, spec.replace(train={
        "steps": args.steps, "lr": 1e-3, "progress": False, "log_every": 100}),
        return_result=True)
    train_wall, train_cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    rss_after = rss_mb()
    params = sum(q.numel() for q in model.net.parameters())
    say(f"main model trained: {result.step} steps, {train_wall:.0f} s wall, {train_cpu:.0f} s CPU")

    kw = dict(reference=ref, samples=args.samples, steps=args.ode_steps, seed=0)
    with warnings.catch_warnings(record=True) as worse:
        warnings.simplefilter("always", WorseThanBaselineWarning)
        results = {
            "reconstruction": evaluate_task(model, test_rec, "reconstruction", **kw),
            "cloud_removal": evaluate_task(model, test_cr, "cloud_removal", **kw),
            "forecasting": evaluate_task(model, test_fc, "forecasting", **kw),
            "change_detection": evaluate_task(model, test_cd, "change_detection", **kw),
        }
    baseline_lines = [str(w.message) for w in worse
                      if issubclass(w.category, WorseThanBaselineWarning)]
    optical = evaluate_task(model, test_cr, "cloud_removal", options=TaskOptions(use_sar=False),
                            include_baselines=False, **kw)["model"]
    cr = results["cloud_removal"]
    cr = {"flow model, S2 + SAR": cr.pop("model"), "flow model, S2 only": optical, **cr}
    results["cloud_removal"] = cr
    say("tasks evaluated")
    calibration = calibration_section(
        model, tests=tests, fit_spec=fit_spec, samples=args.samples, steps=args.ode_steps,
        out_dir=Path(args.out).parent, checkpoints=[], described="the main model above",
        trained_steps=result.step, say=say, n_fit=4 if args.quick else 16)

    # inference throughput: a batch of 32x32 px, 10-date tiles, and a whole scene streamed from
    # a chunked zarr store block by block (the larger-than-memory path)
    tiles = test_fc.index(slice(0, min(16, args.test)))
    speed = {}
    for members in (1, args.samples):
        t, c = time.perf_counter(), time.process_time()
        predict_series(model, tiles, "reconstruction", samples=members, steps=args.ode_steps)
        speed[members] = (tiles.shape[0] / (time.perf_counter() - t),
                          tiles.shape[0] / (time.process_time() - c))
    scene_px = 64 if args.quick else 160
    with tempfile.TemporaryDirectory() as tmp:
        scene = generate_cube(SentinelSeriesSpec(size=scene_px, n_dates=dates, region="all"),
                              seed=9)
        src = save_cube(scene, Path(tmp) / "scene.zarr")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lazy = load_cube(src, chunks={"y": scene_px // 2, "x": scene_px // 2})
            t, c = time.perf_counter(), time.process_time()
            out = apply_to_cube(model, lazy, "reconstruction", samples=1, steps=args.ode_steps)
            with dask.config.set(scheduler="synchronous"):
                save_cube(out, Path(tmp) / "filled.zarr")
            scene_wall, scene_cpu = time.perf_counter() - t, time.process_time() - c
    scene_tiles = scene_px * scene_px / (size * size)
    say(f"throughput {speed}; scene {scene_px} px: {scene_wall:.0f} s wall, {scene_cpu:.0f} s CPU")

    # ablation: the four ACor/STM combinations, each trained with several seeds; the seed also
    # fixes the ensemble noise, so seed k of every variant sees the same batches and noise
    ablation: dict[str, list[tuple[int, float, ImageScores, ImageScores]]] = {}
    for acor, stm in ((False, False), (True, False), (False, True), (True, True)):
        name = {(False, False): "neither", (True, False): "ACor", (False, True): "STM",
                (True, True): "ACor + STM"}[(acor, stm)]
        for seed in range(args.ablation_seeds):
            small = Config(frames=dates, tile=size, dim=32, depth=2, heads=4, pixel_head=8,
                           acor=acor, stm=stm, batch_size=8)
            m, r = train(train_series, small.replace(train={
                "steps": args.ablation_steps, "lr": 2e-3, "seed": seed, "progress": False,
                "log_every": 100}), return_result=True)
            akw = {**kw, "samples": 2, "seed": seed}
            rec = evaluate_task(m, test_rec, "reconstruction", include_baselines=False, **akw)["model"]
            cld = evaluate_task(m, test_cr, "cloud_removal", include_baselines=False, **akw)["model"]
            ablation.setdefault(name, []).append(
                (sum(q.numel() for q in m.net.parameters()), r.final_loss, rec, cld))
            say(f"ablation {name} seed {seed}: rec {rec.psnr:.2f} cr {cld.psnr:.2f}")

    # ------------------------------------------------------------------ report
    li = {k: results[k]["linear interpolation"].psnr for k in ("reconstruction", "cloud_removal")}
    model_psnr = {"reconstruction": results["reconstruction"]["model"].psnr,
                  "cloud_removal": cr["flow model, S2 + SAR"].psnr}
    fc = results["forecasting"]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    targets = []
    for task in ("reconstruction", "cloud_removal"):
        gain = model_psnr[task] - li[task]
        targets.append(f"- {task.replace('_', ' ')}: model - linear interpolation = {gain:+.2f} dB "
                       f"PSNR. Beats linear interpolation: {verdict(gain > 0)}; by the paper's "
                       f"margin (+{PAPER_MARGIN[task]} dB): {verdict(gain >= PAPER_MARGIN[task])}.")
    aux_gain = cr["flow model, S2 + SAR"].psnr - cr["flow model, S2 only"].psnr
    targets.append(f"- SAR auxiliary helps cloud removal: S2 + SAR - S2 only = {aux_gain:+.2f} dB "
                   f"PSNR (paper: +1.10 dB): {verdict(aux_gain > 0)}.")
    fc_gain = fc["model"].psnr - fc["persistence"].psnr
    targets.append(f"- forecasting beats persistence: {fc_gain:+.2f} dB PSNR: "
                   f"{verdict(fc_gain > 0)}.")
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    md = [
        "# Remote sensing: one flow model for four tasks (UniTS-style)",
        "",
        f"Command: `{cmd.strip()}`. Machine: {platform.processor() or platform.machine()}, "
        f"2-core shared CPU, torch {torch.__version__}, {args.threads} thread(s); "
        f"total {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU of this process "
        "(the machine was shared, so wall time overstates the cost).",
        "",
        "## Setup",
        "",
        f"- Data: synthetic Sentinel-2-like series, {size}x{size} px (10 m), {dates} irregular "
        f"dates in a year, bands B02 B03 B04 B08 + Sentinel-1-like VV/VH, land-cover changes; "
        f"template: {load_template().source}. {args.train} training series (template columns "
        f"0-199, cloud cover 0.5 on average), {args.test} held-out series per task from columns "
        "216-299.",
        f"- Model: spatio-temporal transformer (patch 4, dim {spec.dim}, depth {spec.depth}, "
        f"{spec.heads} heads, ACor + STM, pixel head, linear-interpolation prior channels), "
        f"{params / 1e6:.2f} M parameters; one network for all four tasks (task drawn per series), "
        f"{result.step} AdamW steps, batch 8, cosine schedule, EMA weights. Sampling: "
        f"{args.samples}-member ensembles, {args.ode_steps} Euler steps, x1-prediction.",
        "- Scores on the pixels a task asks for (not observed clear; forecasting: the 3 future "
        "dates); every method keeps the observed clear pixels. PSNR / SSIM on a 0-1 reflectance "
        "scale, per series then averaged. Change detection: SitsSCD definitions, percent.",
        "",
        f"Training: {train_wall:.0f} s wall, {train_cpu:.0f} s CPU, final loss "
        f"{result.final_loss:.4f}; peak resident memory of the process {rss_after:.0f} MB "
        f"({rss_before:.0f} MB before training).",
        "",
        f"Inference (tile = {size}x{size} px x {dates} dates, {args.ode_steps} Euler steps, "
        f"{args.threads} thread): {speed[1][0]:.2f} tiles/s wall ({speed[1][1]:.2f} per CPU "
        f"second) with one sample, {speed[args.samples][0]:.2f} tiles/s wall "
        f"({speed[args.samples][1]:.2f} per CPU second) with {args.samples}. A "
        f"{scene_px}x{scene_px}-px scene streamed from a zarr store in "
        f"{scene_px // 2}x{scene_px // 2}-px dask blocks (8-px overlap margins, 32-px tiles "
        f"with 8-px blended overlap inside a block), one sample, written back to zarr: "
        f"{scene_wall:.0f} s wall, {scene_cpu:.0f} s CPU = {scene_tiles / scene_cpu:.2f} "
        "tile-areas per CPU second (overlaps included in the cost).",
        "",
        "## Targets",
        "",
        *targets,
        "",
        "## Reconstruction (2 missing dates + cloud-masked pixels, 40% cloud)",
        "",
        *image_table(results["reconstruction"]),
        "",
        "## Cloud removal (80% cloud; cloudy values and SAR given)",
        "",
        *image_table(cr),
        "",
        "## Forecasting (last 3 of 10 dates)",
        "",
        *image_table(fc),
        "",
        "## Change detection (class-map sequence)",
        "",
        *change_table(results["change_detection"]),
        "",
        f"## Ablation: ACor and STM (dim 32, depth 2, {args.ablation_steps} steps each, "
        f"2-member ensembles, {args.ablation_seeds} seeds)",
        "",
        "Mean ± standard deviation over training seeds; the last two columns are the paired "
        "difference to *neither* (same seed, so same batches and sampling noise), mean ± std.",
        "",
        "| variant | parameters | final loss | reconstruction PSNR | SSIM | cloud removal PSNR "
        "| SSIM | rec. PSNR vs neither | cloud PSNR vs neither |",
        "|---|---|---|---|---|---|---|---|---|",
        *ablation_rows(ablation),
        "",
        *calibration,
        "## Notes",
        "",
        *(f"- **Warning**: {line}." for line in baseline_lines),
        "- Synthetic data: the generator's phenology, clouds and SAR are simple physical "
        "models; absolute scores are not comparable with the paper's TS-S12 / TS-S12CR numbers.",
        "- The ablation uses smaller models and shorter training than the main model; read a "
        "difference as real only where it is larger than its spread over seeds.",
        "",
        "Log: " + "; ".join(log),
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

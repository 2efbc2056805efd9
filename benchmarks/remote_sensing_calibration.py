"""The calibration section of the remote-sensing benchmark: is ``reflectance_std`` honest?

Run through ``python benchmarks/remote_sensing.py --only calibration`` (it trains the model
below and splices the section into benchmarks/results/remote_sensing.md) or as part of the full
benchmark (then the main model is calibrated). Measured on held-out series (template columns
216-299) with a truth:

* why the raw spread is small: its spread-skill ratio at several points of training (an
  untrained model returns linear interpolation, identical members), and with 8 and 32 Euler
  steps;
* the calibration (:mod:`sciflow.domains.remote_sensing.calibration`) fitted on 16 held-out
  series (seed 5), once against their truth and once self-supervised from their own clear
  pixels, then scored on the benchmark's test series (seeds 1-3, disjoint draws): spread-skill
  ratio (mean std / RMSE of the ensemble mean), Gaussian CRPS (and the ensemble's own CRPS
  for the raw members), coverage of the central 50 / 90 % intervals, and a reliability
  diagram (spread-vs-error bins, benchmarks/results/remote_sensing_reliability.png).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from sciflow.checkpoint import load_checkpoint
from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
from sciflow.domains.remote_sensing import (
    Config,
    Model,
    TaskOptions,
    build_network,
    fit_calibration,
    load,
    make_holdout,
    plot_reliability,
    predict_series,
    series_from_cube,
    stack_series,
    train,
    uncertainty_scores,
)
from sciflow.domains.remote_sensing.metrics import crps_ensemble

TASKS = ("reconstruction", "cloud_removal", "forecasting")
LABEL = {"reconstruction": "reconstruction (2 dates hidden, 40% cloud)",
         "cloud_removal": "cloud removal (80% cloud, SAR)",
         "forecasting": "forecasting (last 3 dates)"}
FIGURE = "remote_sensing_reliability.png"


def _series(spec: SentinelSeriesSpec, n: int, seed: int, truth: bool = True):
    s = stack_series([series_from_cube(c) for c in generate_cubes(spec, n, seed=seed)])
    return s if truth else dataclasses.replace(s, truth=None)


def _score(model: Model, task: str, series, *, samples: int, steps: int, seed: int = 0,
           calibrate: bool = True) -> dict[str, Any]:
    """Raw and calibrated uncertainty scores of ``model`` on ``series`` (with a truth)."""
    hold = make_holdout(series, task, drop_dates=2, generator=torch.Generator().manual_seed(0))
    opts = TaskOptions(drop_dates=0, horizon=3)
    preds = [predict_series(model, hold.series.index(slice(i, i + 8)), task, options=opts,
                            samples=samples, steps=steps, seed=seed + i, calibrate=calibrate)
             for i in range(0, hold.series.shape[0], 8)]
    cat = {k: torch.cat([getattr(p, k) for p in preds]) for k in
           ("reflectance", "reflectance_std", "spread", "target")}
    ens = torch.cat([p.samples for p in preds], dim=1)
    mask = cat["target"] & hold.known
    return {"raw": uncertainty_scores(cat["reflectance"], cat["spread"], hold.truth, mask),
            "std": uncertainty_scores(cat["reflectance"], cat["reflectance_std"], hold.truth, mask),
            "crps_ensemble": crps_ensemble(ens, hold.truth, mask)}


def _cover(sc, level: float) -> str:
    return f"{100 * dict(sc.coverage)[level]:.0f}%"


def calibration_section(model: Model, *, tests: dict[str, Any], fit_spec: SentinelSeriesSpec,
                        samples: int, steps: int, out_dir: Path, checkpoints: list[Path],
                        described: str, trained_steps: int, say: Any, n_fit: int = 16
                        ) -> list[str]:
    """Markdown lines of the section; writes the reliability figure into ``out_dir``."""
    t0 = time.perf_counter()
    # why: the raw spread along training and with more solver steps
    why = []
    rec = tests["reconstruction"]
    stages: list[tuple[str, Model]] = []
    torch.manual_seed(0)
    stages.append(("0 (untrained: linear interpolation)",
                   dataclasses.replace(model, net=build_network(model.config).eval(),
                                       calibration=None)))
    for path in checkpoints:
        stages.append((str(load_checkpoint(path).step), load(path)))
    stages.append((f"{trained_steps} (final)", dataclasses.replace(model, calibration=None)))
    for name, m in stages:
        sc = _score(m, "reconstruction", rec, samples=samples, steps=steps, calibrate=False)["raw"]
        why.append(f"| {name} | {steps} | {sc.mean_std:.5f} | {sc.rmse:.4f} | "
                   f"{sc.spread_skill:.3f} |")
        say(f"calibration: raw spread after {name} steps: ratio {sc.spread_skill:.3f}")
    raw32 = _score(dataclasses.replace(model, calibration=None), "reconstruction", rec,
                   samples=samples, steps=32, calibrate=False)["raw"]
    why.append(f"| {trained_steps} (final) | 32 | {raw32.mean_std:.5f} | {raw32.rmse:.4f} | "
               f"{raw32.spread_skill:.3f} |")

    # the calibrations: against a truth and self-supervised, fitted on held-out series
    fits = {}
    for source, truth in (("truth", True), ("self-supervised", False)):
        t = time.perf_counter()
        cal = fit_calibration(model, _series(fit_spec, n_fit, 5, truth=truth), tasks=TASKS,
                              samples=samples, steps=steps, seed=0)
        fits[source] = cal
        say(f"calibration fitted ({source}, {time.perf_counter() - t:.0f} s): {cal.skill}")
    rows, reliability, calibrated = [], {}, []
    for task in TASKS:
        scored = {source: _score(dataclasses.replace(model, calibration=cal), task, tests[task],
                                 samples=samples, steps=steps)
                  for source, cal in fits.items()}
        raw = scored["truth"]["raw"]
        rows.append(f"| {LABEL[task]} | raw ensemble spread | {raw.spread_skill:.3f} | "
                    f"{raw.crps:.5f} (ensemble {scored['truth']['crps_ensemble']:.5f}) | "
                    f"{_cover(raw, 0.5)} | {_cover(raw, 0.9)} | {raw.rmse:.4f} |")
        for source in fits:
            sc = scored[source]["std"]
            calibrated.append(sc.spread_skill)
            rows.append(f"| {LABEL[task]} | calibrated ({source}) | {sc.spread_skill:.3f} | "
                        f"{sc.crps:.5f} | {_cover(sc, 0.5)} | {_cover(sc, 0.9)} | "
                        f"{sc.rmse:.4f} |")
        reliability[task] = scored["truth"]
    bins = []
    for task, sc in reliability.items():
        for kind in ("raw", "std"):
            cells = " ".join(f"{s:.4f}/{e:.4f}" for s, e, _ in sc[kind].bins)
            bins.append(f"| {task} | {'raw' if kind == 'raw' else 'calibrated'} | {cells} |")
    figure = plot_reliability(
        {f"{task}, {kind}": sc[key] for task, sc in reliability.items()
         for kind, key in (("raw", "raw"), ("calibrated", "std"))},
        out_dir / FIGURE, title="reflectance_std vs error on held-out series (10 bins)")
    params = fits["truth"].params["reconstruction"]
    ratios = [min(fits[s].skill[t][1] for t in TASKS) for s in fits]
    say(f"calibration section: {time.perf_counter() - t0:.0f} s")
    return [
        "## Calibrated uncertainty (reflectance_std)",
        "",
        f"Model: {described}. Sampling: {samples}-member ensembles, {steps} Euler steps. Held "
        f"out: the test series of the tables above (seeds 1-3, template columns 216-299, "
        f"{rec.shape[0]} per task); the calibration is fitted on {n_fit} other held-out series "
        "(seed 5, same columns, 40% cloud), against their clear_reflectance (truth) or "
        "self-supervised from their own clear pixels under the next date's clouds (what "
        "`sciflow rs calibrate` does on a user's cubes without truth). Scored on the pixels "
        "each task fills; spread/skill = mean std / RMSE of the ensemble mean (target "
        "0.5-2); CRPS of N(mean, std^2) (the raw row also gives the 4-member ensemble's own "
        "CRPS); coverage of the central 50% / 90% Gaussian intervals.",
        "",
        "Why the raw spread is too small (reconstruction; members differ only through the "
        "network's dependence on x_t near t = 1, which an untrained model does not have and "
        "training adds slowly; more steps do not help):",
        "",
        "| training steps | Euler steps | mean raw std | RMSE | spread/skill |",
        "|---|---|---|---|---|",
        *why,
        "",
        "| task | reflectance_std | spread/skill | CRPS | 50% interval | 90% interval | RMSE |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Target (spread/skill of the calibrated reflectance_std within 0.5-2 on the held-out "
        f"test series, every task, both fits): "
        f"{'**met**' if all(0.5 <= r <= 2 for r in calibrated) else '**not met**'} "
        f"(range {min(calibrated):.2f}-{max(calibrated):.2f}; on the fit data the lowest is "
        f"{ratios[0]:.2f} with truth, {ratios[1]:.2f} self-supervised).",
        "",
        "Reliability (spread-vs-error): per bin of predicted std (10 equal-count bins, lowest "
        "first), mean std / RMSE of the mean; equal where calibrated. Figure: "
        f"[{FIGURE}]({FIGURE}).",
        "",
        "| task | std | bins (mean std / RMSE) |",
        "|---|---|---|",
        *bins,
        "",
        "Fitted (truth, reconstruction), per band (a, b0, b1) of sigma^2 = (a s)^2 + "
        "(b0 + b1 g / 30 d)^2: " + "; ".join(
            f"{b} ({a:.2f}, {b0:.4f}, {b1:.4f})" for b, (a, b0, b1) in
            zip(model.config.bands, params)) + f" ({figure.name} written next to this file).",
        "",
    ]


def small_model(train_series, *, steps: int, say: Any) -> tuple[Model, list[Path], str, Any]:
    """The smaller model the section is measured on when the main one is not retrained
    (dim 32, depth 2, as the ablation), with checkpoints at fifths of training."""
    spec = Config(frames=10, tile=32, dim=32, depth=2, heads=4, pixel_head=8, batch_size=8)
    tmp = tempfile.TemporaryDirectory()
    t = time.perf_counter()
    model, result = train(train_series, spec.replace(train={
        "steps": steps, "lr": 2e-3, "progress": False, "log_every": 100, "out_dir": tmp.name,
        "checkpoint_every": max(steps // 5, 1), "keep_checkpoints": 10}), return_result=True)
    params = sum(p.numel() for p in model.net.parameters())
    paths = sorted(Path(tmp.name, "checkpoints").glob("step_*.pt"),
                   key=lambda p: load_checkpoint(p).step)
    keep = [p for p in paths if load_checkpoint(p).step in (steps // 5, 2 * steps // 5)]
    say(f"calibration model trained: {result.step} steps, {time.perf_counter() - t:.0f} s")
    described = (f"a smaller model trained for this section (dim 32, depth 2, pixel head 8, "
                 f"{params / 1e3:.0f} k parameters, {result.step} AdamW steps on the training "
                 "series above), not the main model")
    return model, keep, described, tmp

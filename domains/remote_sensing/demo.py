"""``sciflow demo`` section: cloud removal of Sentinel-2-like series with one small flow model.

Trains a small spatio-temporal flow on synthetic series over the real spyndex Sentinel-2
template, removes clouds on held-out series (a disjoint part of the scene) and scores it against
linear interpolation, optical-only, and with the SAR auxiliary; draws truth / cloudy /
reconstruction / raw spread (with its colourbar) for one date; a model worse than linear
interpolation gets a warning line.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes, load_template

from .baselines import linear_interpolation
from .config import Config
from .data import series_from_cube, stack_series
from .evaluation import baseline_check, evaluate_task
from .sampling import predict_series
from .tasks import TaskOptions
from .training import train

__all__ = ["demo"]


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.clip(np.stack([a[2], a[1], a[0]], -1) * 4.0, 0.0, 1.0)


def demo(out_dir: Path, *, steps: int = 300, n_train: int = 96) -> str:
    """Train (about 40 s of one core), evaluate cloud removal, write a PNG; markdown back.

    Runs on one thread: these small tensors gain little from a second one, and on a shared
    machine a second thread mostly spins.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _demo(Path(out_dir), steps=steps, n_train=n_train)
    finally:
        torch.set_num_threads(threads)


def _demo(out_dir: Path, *, steps: int, n_train: int) -> str:
    size, dates = 24, 8
    t0 = time.perf_counter()
    train_cubes = generate_cubes(SentinelSeriesSpec(size=size, n_dates=dates), n_train, seed=0)
    test_cubes = generate_cubes(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.7,
                                                   region="test"), 8, seed=1)
    test = stack_series([series_from_cube(c) for c in test_cubes])
    config = Config(frames=dates, tile=size, dim=32, depth=2, heads=4, pixel_head=8,
                    batch_size=8).replace(train={"steps": steps, "lr": 2e-3, "progress": False,
                                                 "log_every": max(steps // 4, 1)})
    model, result = train(train_cubes, config, return_result=True)
    with_sar = evaluate_task(model, test, "cloud_removal", samples=4, steps=6, seed=0,
                             check_baseline=False)
    worse = baseline_check("cloud_removal", with_sar)  # warns, and a line for the report
    optical = evaluate_task(model, test, "cloud_removal", samples=4, steps=6, seed=0,
                            options=TaskOptions(use_sar=False), include_baselines=False)
    rows = [("flow model, S2 + SAR", with_sar["model"]), ("flow model, S2 only", optical["model"])]
    rows += [(name, s) for name, s in with_sar.items() if name != "model"]
    table = ["| method | PSNR dB | SSIM | RMSE | SAM deg | CRPS |", "|---|---|---|---|---|---|"]
    for name, s in rows:
        crps = f"{s.crps:.4f}" if s.crps is not None else "-"
        table.append(f"| {name} | {s.psnr:.2f} | {s.ssim:.3f} | {s.rmse:.4f} | {s.sam:.2f} | "
                     f"{crps} |")

    # picture: the cloudiest date that still shows some ground (cloud fraction <= 85%)
    cloudy = (~test.clear).float().mean((2, 3))  # (B, T)
    score = torch.where(cloudy <= 0.85, cloudy, torch.full_like(cloudy, -1.0))
    i, t = divmod(int(score.argmax()), cloudy.shape[1])
    one = test.index(slice(i, i + 1))
    pred = predict_series(model, one, "cloud_removal", samples=4, steps=6, seed=0)
    interp = linear_interpolation(one.reflectance, pred.given, one.days)
    interp = torch.where(pred.given[:, :, None], one.reflectance, interp)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(_rgb(one.truth[0, t].numpy()), "truth (cloud-free)"),
              (_rgb(one.reflectance[0, t].numpy()), f"observed ({100 * float(cloudy[i, t]):.0f}% "
                                                      "cloud / shadow)"),
              (_rgb(pred.reflectance[0, t].numpy()), "flow model (ensemble mean)"),
              (_rgb(interp[0, t].numpy()), "linear interpolation"),
              (pred.spread[0, t].mean(0).numpy(), "raw ensemble spread (uncalibrated)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4))
    for ax, (img, title) in zip(axes, panels):
        im = ax.imshow(img, cmap="magma" if img.ndim == 2 else None)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        if img.ndim == 2:
            fig.colorbar(im, ax=ax, shrink=0.8, label="reflectance (unitless)")
    fig.tight_layout()
    figure = out_dir / "remote_sensing_cloud_removal.png"
    fig.savefig(figure, dpi=100)
    plt.close(fig)
    params = sum(p.numel() for p in model.net.parameters())
    cloud = float((~test.clear).float().mean())
    return (
        "## Remote sensing: cloud removal with one conditional flow (UniTS-style)\n\n"
        f"Synthetic Sentinel-2-like series ({size}x{size} px, {dates} dates, 4 bands + SAR) over "
        f"the template *{load_template().source}*; {n_train} training series, 8 held-out series "
        f"from a disjoint part of the scene with {100 * cloud:.0f}% cloudy pixels. Spatio-temporal "
        f"transformer with ACor + STM ({params / 1e3:.0f} k parameters), {result.step} steps in "
        f"{result.wall_time:.0f} s; 4-member ensembles, 6 Euler steps. Metrics on the cloudy "
        "pixels (observed clear pixels are kept for every method).\n\n"
        + "\n".join(table)
        + ("" if worse is None else f"\n\n**Warning**: {worse}.")
        + f"\n\n![truth, cloudy, flow model, linear interpolation, spread]({figure.name})\n\n"
        f"(section time {time.perf_counter() - t0:.0f} s; the full benchmark is "
        "benchmarks/results/remote_sensing.md)\n"
    )

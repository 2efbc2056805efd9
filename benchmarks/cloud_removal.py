"""Cloud removal as an inverse problem: the set-up that benchmarks/inference.py (section 5,
FlowChef) and benchmarks/few_step.py (section 3, FLAIR vs FlowChef) share.

A remote-sensing flow of the demo's size is trained on 96 synthetic Sentinel-2-like series; in
each held-out series the cloudiest date that still shows 15-85% of its ground is hidden from the
model's condition, its clear pixels are the measurement y = M x, and its cloudy pixels are scored
with the observed pixels pasted back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

SIZE, DATES = 24, 8


def cloudiest_date(series: Any, low: float = 0.15, high: float = 0.85) -> Tensor:
    """Per series the cloudiest date whose cloud fraction lies in [low, high], as a (B, T) mask."""
    cloud = (~series.clear).float().mean((2, 3))
    score = torch.where((cloud >= low) & (cloud <= high), cloud, torch.full_like(cloud, -1.0))
    hide = torch.zeros(series.shape[:2], dtype=torch.bool)
    hide[torch.arange(series.shape[0]), score.argmax(1)] = True
    return hide


@dataclass
class CloudRemoval:
    """The trained model, the held-out series and the masks of one cloud-removal problem."""

    model: Any
    result: Any
    config: Any
    train_cubes: list
    test: Any
    hide: Tensor        # (B, T) the hidden date
    observed: Tensor    # (B, T, H, W) the measurement's pixels
    cloudy: Tensor      # (B, T, H, W) the pixels scored
    train_wall: float
    train_cpu: float

    @property
    def n(self) -> int:
        return self.test.shape[0]

    @property
    def cloud_fraction(self) -> float:
        """Mean cloud fraction of the hidden dates."""
        cloud = (~self.test.clear).float().mean((2, 3))
        return float(cloud[self.hide].mean())

    @property
    def parameters_k(self) -> float:
        return sum(p.numel() for p in self.model.net.parameters()) / 1e3

    def task(self, series: Any, hidden: Tensor):
        """The reconstruction batch of ``series`` with the dates of ``hidden`` withheld."""
        from sciflow.domains.remote_sensing import TaskOptions, make_task

        spec = self.config
        return make_task(series, "reconstruction", standardizer=self.model.standardizer,
                         n_classes=len(spec.classes), use_sar_channels=bool(spec.sar),
                         options=TaskOptions(drop_dates=0, use_sar=False), hide_dates=hidden,
                         prior=spec.prior)

    def decoded(self, states: Tensor) -> Tensor:
        """Model states -> reflectance (..., T, C, H, W)."""
        from sciflow.domains.remote_sensing import decode_state

        return decode_state(states, self.model.standardizer, len(self.config.bands))[0]

    def linear_interpolation(self) -> Tensor:
        """The other dates' clear pixels interpolated in time, as a one-member ensemble."""
        from sciflow.domains.remote_sensing.baselines import linear_interpolation

        given = self.test.clear & ~self.hide[:, :, None, None]
        return linear_interpolation(self.test.reflectance, given, self.test.days)[None]

    def score(self, ens: Tensor) -> tuple[float, Any, Tensor]:
        """An ensemble (S, B, T, C, H, W) -> (measurement RMSE on the observed pixels before
        pasting, image scores of the cloudy pixels with the observed ones pasted back, per-series
        PSNR (B,))."""
        from sciflow.domains.remote_sensing.metrics import image_scores, psnr, rmse

        test, keep = self.test, self.observed[:, :, None]
        mean = ens.mean(0)
        pasted = torch.where(keep, test.reflectance, mean)
        samples = torch.where(keep[None], test.reflectance[None], ens) if ens.shape[0] > 1 else None
        scores = image_scores(pasted, test.truth, self.cloudy, samples=samples)
        per = torch.tensor([psnr(pasted[i:i + 1], test.truth[i:i + 1], self.cloudy[i:i + 1])
                            for i in range(self.n)])
        return rmse(mean, test.reflectance, self.observed), scores, per

    def paired_gain(self, per: Tensor, base: Tensor, sep: str = "±") -> str:
        """Per-series PSNR gain over ``base``: mean, s.e. and how many series improved."""
        gain = per - base
        return (f"{float(gain.mean()):+.2f} {sep} {float(gain.std() / math.sqrt(self.n)):.2f} "
                f"({int((gain > 0).sum())}/{self.n})")


def cloud_removal(n_test: int, train_steps: int,
                  clock: Callable[[], float] = time.perf_counter) -> CloudRemoval:
    """Train the prior (seed 0) and build the held-out problem of ``n_test`` series."""
    from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
    from sciflow.domains.remote_sensing import Config, series_from_cube, stack_series, train

    wall0, cpu0 = clock(), time.process_time()
    train_cubes = generate_cubes(SentinelSeriesSpec(size=SIZE, n_dates=DATES), 96, seed=0)
    test = stack_series([series_from_cube(c) for c in generate_cubes(
        SentinelSeriesSpec(size=SIZE, n_dates=DATES, cloud_cover=0.7, region="test"), n_test,
        seed=1)])
    spec = Config(frames=DATES, tile=SIZE, dim=32, depth=2, heads=4, pixel_head=8, batch_size=8)
    with torch.enable_grad():  # train seeds everything (seed 0) before building the network
        model, result = train(train_cubes, spec.replace(train={
            "steps": train_steps, "lr": 2e-3, "progress": False,
            "log_every": max(train_steps // 4, 1)}), return_result=True)
    hide = cloudiest_date(test)
    return CloudRemoval(model=model, result=result, config=spec, train_cubes=train_cubes,
                        test=test, hide=hide, observed=test.clear & hide[:, :, None, None],
                        cloudy=~test.clear & hide[:, :, None, None],
                        train_wall=clock() - wall0, train_cpu=time.process_time() - cpu0)

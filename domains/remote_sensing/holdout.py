"""Held-out values to score or calibrate a model on: from a known truth, or from the cube itself.

:func:`make_holdout` prepares what a task is given and where the answer is known:

* with a truth (``clear_reflectance``, synthetic and benchmark cubes): reconstruction also loses
  ``drop_dates`` whole dates (:func:`~.data.hide_dates`); every pixel the task fills is scored;
* without one (a user's own cubes), self-supervised: clear pixels that lie under the next
  date's clouds or shadows are hidden from the model (realistic gap shapes; reconstruction
  also loses ``drop_dates`` whole dates) and their observed values are the answer; forecasting
  is scored on the clear pixels of the forecast dates. Only clear observations are scored.

``Holdout.known`` marks where ``truth`` holds the answer; score where a prediction's ``target``
and ``known`` are both true.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sciflow.errors import InputError

from .data import SeriesBatch, hide_dates
from .tasks import check_task

__all__ = ["Holdout", "make_holdout"]


@dataclass(frozen=True)
class Holdout:
    """series: what the model is given. truth (B, T, C, H, W): the answer where ``known``
    (B, T, H, W) is true. source: "truth" (clear_reflectance) or "observations" (self-supervised)."""

    series: SeriesBatch
    truth: Tensor
    known: Tensor
    source: str


def _without(series: SeriesBatch, hidden: Tensor) -> SeriesBatch:
    """``series`` with the pixels ``hidden`` (B, T, H, W) not acquired (optical only)."""
    keep = ~hidden
    return SeriesBatch(
        reflectance=series.reflectance * keep[:, :, None].to(series.reflectance.dtype),
        available=series.available & keep, clear=series.clear & keep, days=series.days,
        doy=series.doy, sar=series.sar, sar_available=series.sar_available, truth=series.truth,
        labels=series.labels)


def make_holdout(series: SeriesBatch, task: str, *, drop_dates: int = 2,
                 generator: torch.Generator | None = None) -> Holdout:
    """What ``task`` is given and where its answer is known (module docstring)."""
    task = check_task(task)
    if task == "change_detection":
        raise InputError("hold-out scoring covers reflectance tasks (reconstruction, "
                         "cloud_removal, forecasting), not change_detection")
    t = series.shape[1]
    drop = min(drop_dates, t - 1) if task == "reconstruction" else 0
    if series.truth is not None:
        given = hide_dates(series, drop, generator=generator)[0] if drop else series
        known = torch.ones_like(series.clear)
        return Holdout(given, series.truth, known, "truth")
    if not bool(series.clear.any()):
        raise InputError("self-supervised hold-out needs clear observations: the cubes have "
                         "none (every pixel cloudy or not acquired)")
    given = series
    if task != "forecasting":
        cloudy_next = torch.roll(series.available & ~series.clear, -1, dims=1)
        given = _without(series, series.clear & cloudy_next)
    if drop:
        given = hide_dates(given, drop, generator=generator)[0]
    return Holdout(given, series.reflectance, series.clear.clone(), "observations")

"""Per-pixel baselines for gap filling, cloud removal, forecasting and land-cover mapping.

Every gap-filling baseline reads only the clear values the task gives (``given``), pixel by
pixel along time, so it sees exactly what the flow model sees of the optical series:

* last observation: the latest given value at or before the date (carried forward); before the
  first given value, the first one.
* closest observation: the given value nearest in time (ties: the earlier).
* linear interpolation: linear in time between the previous and next given values; the nearest
  given value outside them.
* persistence (forecasting): the last observation.
* climatology (forecasting): the training set's mean reflectance per band and calendar month,
  the same for every pixel (a one-year archive has no per-pixel climatology).
* a per-date land-cover classifier for change detection: nearest class centroid of the
  linearly interpolated spectrum, centroids per (calendar month, class) from the training set.

A pixel with no given value on any date takes the mean of all given values of its series (per
band); a series with no given value at all falls back to the batch mean. A batch with no given
value raises ValueError.

Shapes: values (B, T, C, H, W), given (B, T, H, W) bool, days (B, T) -> (B, T, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "last_observation",
    "closest_observation",
    "linear_interpolation",
    "persistence",
    "Climatology",
    "CentroidClassifier",
    "BASELINES",
]


def _neighbours(given: Tensor) -> tuple[Tensor, Tensor]:
    """Index of the previous (<= t) and next (>= t) given date per pixel; -1 / T where none."""
    b, t = given.shape[:2]
    idx = torch.arange(t, device=given.device).reshape(1, t, 1, 1).expand_as(given)
    prev = torch.where(given, idx, torch.full_like(idx, -1)).cummax(dim=1).values
    nxt = torch.where(given, idx, torch.full_like(idx, t))
    nxt = torch.flip(torch.flip(nxt, [1]).cummin(dim=1).values, [1])
    return prev, nxt


def _gather(values: Tensor, index: Tensor) -> Tensor:
    """values (B, T, C, H, W) at date index (B, T, H, W) -> (B, T, C, H, W)."""
    t = values.shape[1]
    i = index.clamp(0, t - 1)[:, :, None].expand(-1, -1, values.shape[2], -1, -1)
    return torch.gather(values, 1, i)


def _fallback(values: Tensor, given: Tensor) -> Tensor:
    """Per-series band mean of given values (B, 1, C, 1, 1); batch mean for empty series."""
    if not bool(given.any()):
        raise ValueError("no clear (given) observation anywhere in the batch: a per-pixel "
                         "baseline has nothing to fill from")
    m = given[:, :, None].to(values.dtype)
    count = m.sum(dim=(1, 3, 4), keepdim=True)
    total = (values * m).sum(dim=(1, 3, 4), keepdim=True)
    overall = total.sum(0, keepdim=True) / count.sum(0, keepdim=True)
    return torch.where(count > 0, total / count.clamp_min(1), overall)


def _check(values: Tensor, given: Tensor, days: Tensor | None = None) -> None:
    if values.dim() != 5 or given.shape != values.shape[:2] + values.shape[3:]:
        raise ValueError(f"values must be (B, T, C, H, W) and given (B, T, H, W); got "
                         f"{tuple(values.shape)} and {tuple(given.shape)}")
    if given.dtype != torch.bool:
        raise TypeError(f"given must be a bool mask, got {given.dtype}")
    if days is not None and days.shape != values.shape[:2]:
        raise ValueError(f"days must be (B, T) = {tuple(values.shape[:2])}, got {tuple(days.shape)}")


def last_observation(values: Tensor, given: Tensor, days: Tensor | None = None) -> Tensor:
    """Carry the latest given value forward (the first one backward before it)."""
    _check(values, given)
    prev, nxt = _neighbours(given)
    t = values.shape[1]
    has_prev, has_next = (prev >= 0)[:, :, None], (nxt < t)[:, :, None]
    out = torch.where(has_prev, _gather(values, prev), _gather(values, nxt))
    return torch.where(has_prev | has_next, out, _fallback(values, given).expand_as(values))


persistence = last_observation


def _dated_neighbours(values: Tensor, given: Tensor, days: Tensor
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Checked inputs -> (previous given date, next given date (T when none), the day of every
    date, of the previous and of the next given one), each (B, T, H, W), days in float64."""
    _check(values, given, days)
    prev, nxt = _neighbours(given)
    t = values.shape[1]
    d = days.to(torch.float64)[:, :, None, None].expand(given.shape)
    return (prev, nxt, d, torch.gather(d, 1, prev.clamp(0, t - 1)),
            torch.gather(d, 1, nxt.clamp(0, t - 1)))


def closest_observation(values: Tensor, given: Tensor, days: Tensor) -> Tensor:
    """The given value nearest in time (ties go to the earlier date)."""
    prev, nxt, d, d_prev, d_next = _dated_neighbours(values, given, days)
    has_prev, has_next = prev >= 0, nxt < values.shape[1]
    use_prev = has_prev & (~has_next | ((d - d_prev) <= (d_next - d)))
    out = torch.where(use_prev[:, :, None], _gather(values, prev), _gather(values, nxt))
    ok = (has_prev | has_next)[:, :, None]
    return torch.where(ok, out, _fallback(values, given).expand_as(values))


def linear_interpolation(values: Tensor, given: Tensor, days: Tensor) -> Tensor:
    """Linear in time between the previous and next given values; nearest beyond them.

    v(t) = v(a) + (v(b) - v(a)) (d_t - d_a) / (d_b - d_a), a <= t <= b the given neighbours.
    """
    prev, nxt, d, d_prev, d_next = _dated_neighbours(values, given, days)
    has_prev, has_next = prev >= 0, nxt < values.shape[1]
    span = (d_next - d_prev).clamp_min(1e-9)
    w = torch.where(has_prev & has_next & (nxt > prev), (d - d_prev) / span, torch.zeros_like(d))
    w = torch.where(~has_prev & has_next, torch.ones_like(w), w)
    v_prev, v_next = _gather(values, prev), _gather(values, nxt)
    out = v_prev + (v_next - v_prev) * w[:, :, None].to(values.dtype)
    out = torch.where((~has_prev & has_next)[:, :, None], v_next, out)
    ok = (has_prev | has_next)[:, :, None]
    return torch.where(ok, out, _fallback(values, given).expand_as(values))


def _month(doy: Tensor) -> Tensor:
    return ((doy.to(torch.float64) - 1) / 30.44).floor().clamp(0, 11).long()


@dataclass(frozen=True)
class Climatology:
    """Mean reflectance per calendar month and band, (12, C), fitted on training truth."""

    monthly: Tensor

    @classmethod
    def fit(cls, truth: Tensor, doy: Tensor) -> Climatology:
        """truth (B, T, C, H, W), doy (B, T). Months without data take the overall mean."""
        c = truth.shape[2]
        per_date = truth.mean(dim=(-2, -1)).reshape(-1, c).double()  # (B*T, C)
        months = _month(doy).reshape(-1)
        sums = torch.zeros(12, c, dtype=torch.float64).index_add_(0, months, per_date)
        counts = torch.zeros(12, dtype=torch.float64).index_add_(
            0, months, torch.ones_like(months, dtype=torch.float64))
        overall = per_date.mean(0, keepdim=True)
        monthly = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], overall)
        return cls(monthly.float())

    def predict(self, doy: Tensor, shape: tuple[int, ...]) -> Tensor:
        """The climatology at dates doy (B, T), broadcast to shape (B, T, C, H, W)."""
        m = self.monthly.to(doy.device)[_month(doy)]  # (B, T, C)
        return m[..., None, None].expand(shape).clone()


@dataclass(frozen=True)
class CentroidClassifier:
    """Nearest class centroid of a pixel's spectrum, centroids per (month, class): (12, K, C).

    A (month, class) pair unseen in training uses the class's all-year centroid; a class never
    seen is never predicted.
    """

    centroids: Tensor
    seen: Tensor  # (K,) bool

    @classmethod
    def fit(cls, truth: Tensor, labels: Tensor, doy: Tensor, n_classes: int) -> CentroidClassifier:
        b, t, c, h, w = truth.shape
        spectra = truth.movedim(2, -1).reshape(-1, c).double()
        lab = labels.reshape(-1)
        month = _month(doy)[:, :, None, None].expand(b, t, h, w).reshape(-1)
        key = month * n_classes + lab
        sums = torch.zeros(12 * n_classes, c, dtype=torch.float64).index_add_(0, key, spectra)
        counts = torch.bincount(key, minlength=12 * n_classes).double()
        cls_sums = torch.zeros(n_classes, c, dtype=torch.float64).index_add_(0, lab, spectra)
        cls_counts = torch.bincount(lab, minlength=n_classes).double()
        year = cls_sums / cls_counts.clamp_min(1)[:, None]
        cent = (sums / counts.clamp_min(1)[:, None]).reshape(12, n_classes, c)
        cent = torch.where(counts.reshape(12, n_classes, 1) > 0, cent, year[None])
        return cls(cent.float(), cls_counts > 0)

    def predict(self, reflectance: Tensor, doy: Tensor) -> Tensor:
        """reflectance (B, T, C, H, W), doy (B, T) -> labels (B, T, H, W) int64."""
        cent = self.centroids.to(reflectance.device)[_month(doy)]  # (B, T, K, C)
        d = ((reflectance[:, :, None] - cent[..., None, None]) ** 2).sum(3)  # (B, T, K, H, W)
        d = torch.where(self.seen.to(d.device)[None, None, :, None, None], d,
                        torch.full_like(d, float("inf")))
        return d.argmin(dim=2)


BASELINES = {
    "last observation": last_observation,
    "closest observation": closest_observation,
    "linear interpolation": linear_interpolation,
}

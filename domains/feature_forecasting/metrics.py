"""Scores of feature forecasts: feature errors over K samples, decoded-map accuracy, sharpness and
how well the samples' branch frequencies match the known ones.

Feature errors follow VFMF's validation (Boduljak et al. 2025), for K samples x_1..K of one future x:

    MSE of the mean   ||mean_k x_k - x||^2       (what a deterministic forecast is scored on)
    mean-of-K         mean_k ||x_k - x||^2        (a typical sample)
    min-of-K          min_k  ||x_k - x||^2        (the best sample: does any sample hit the truth?)

each averaged over frames, tokens and channels, then over forecasts. Decoded maps are scored with
mean IoU (dataset-level confusion matrix, classes with a non-empty union), depth AbsRel
mean(|d_hat - d| / d) and delta1 = fraction with max(d_hat / d, d / d_hat) < 1.25 (Eigen et al.
2014). Sharpness is the ratio of spatial gradient energy, predicted over true, of the feature maps
(1: as sharp as the data; regression to the mean blurs, < 1). Branch frequencies: every sample is
assigned to the nearest exactly-rendered future branch; the total-variation distance
TV(p, q_i) = 1/2 sum_b |p_b - q_i,b| compares the histogram q_i of one forecast's K samples with
the known probabilities p, averaged over forecasts (a deterministic forecast scores 1 - p_b of
the branch it lands on; a perfect sampler scores the K-sample floor of
:func:`tv_sampling_floor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "SampleErrors",
    "sample_errors",
    "mean_iou",
    "depth_errors",
    "gradient_energy",
    "sharpness",
    "nearest_branch",
    "branch_histogram",
    "total_variation",
    "tv_sampling_floor",
    "per_forecast_tv",
    "reconstruction_error",
    "ForecastScores",
]


@dataclass(frozen=True)
class SampleErrors:
    """Feature errors of K-sample forecasts (floats), and the best sample of each forecast
    (``best`` (B,) int64, the argmin of the per-sample error)."""

    mse_of_mean: float
    mean_of_k: float
    min_of_k: float
    spread: float
    best: Tensor


def _check_samples(samples: Tensor, truth: Tensor) -> None:
    if samples.dim() < 2 or samples.shape[0] != truth.shape[0] or samples.shape[2:] != truth.shape[1:]:
        raise ValueError(f"samples must be (B, K, *) with truth (B, *): got samples "
                         f"{tuple(samples.shape)} and truth {tuple(truth.shape)}")


def sample_errors(samples: Tensor, truth: Tensor) -> SampleErrors:
    """Errors of samples (B, K, *) against the realised futures (B, *); see the module doc.

    ``spread`` is the mean over entries of the variance across the K samples (0 for a
    deterministic forecast).
    """
    _check_samples(samples, truth)
    s, x = samples.double(), truth.double()[:, None]
    per = (s - x).square().flatten(2).mean(dim=2)  # (B, K)
    mean_err = (s.mean(dim=1, keepdim=True) - x).square().flatten(1).mean(dim=1)
    spread = s.var(dim=1, unbiased=False).mean() if s.shape[1] > 1 else torch.zeros(())
    return SampleErrors(mse_of_mean=float(mean_err.mean()), mean_of_k=float(per.mean()),
                        min_of_k=float(per.min(dim=1).values.mean()), spread=float(spread),
                        best=per.argmin(dim=1))


def mean_iou(pred: Tensor, truth: Tensor, num_classes: int) -> float:
    """Mean IoU over classes with a non-empty union, from one confusion matrix over all pixels.

    IoU_c = |pred = c and truth = c| / |pred = c or truth = c|. Shapes: pred, truth (*) int64.
    """
    if pred.shape != truth.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and truth {tuple(truth.shape)} differ in shape")
    p, t = pred.reshape(-1).long(), truth.reshape(-1).long()
    if p.numel() and (int(p.min()) < 0 or int(max(p.max(), t.max())) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got "
                         f"[{int(min(p.min(), t.min()))}, {int(max(p.max(), t.max()))}]")
    conf = torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes).double()
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if bool(present.any()) else float("nan")


def depth_errors(pred: Tensor, truth: Tensor) -> tuple[float, float]:
    """(AbsRel, delta1) of positive depth maps of one shape."""
    if pred.shape != truth.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and truth {tuple(truth.shape)} differ in shape")
    p, t = pred.double(), truth.double()
    if bool((t <= 0).any()) or bool((p <= 0).any()):
        raise ValueError("depths must be positive")
    absrel = ((p - t).abs() / t).mean()
    delta1 = (torch.maximum(p / t, t / p) < 1.25).double().mean()
    return float(absrel), float(delta1)


def gradient_energy(maps: Tensor) -> float:
    """Mean squared forward difference along both spatial axes of maps (*, C, h, w)."""
    if maps.dim() < 3:
        raise ValueError(f"maps must have shape (*, C, h, w), got {tuple(maps.shape)}")
    m = maps.double()
    dx = (m[..., :, 1:] - m[..., :, :-1]).square().mean()
    dy = (m[..., 1:, :] - m[..., :-1, :]).square().mean()
    return float(0.5 * (dx + dy))


def sharpness(pred: Tensor, truth: Tensor) -> float:
    """Gradient energy of the predictions over that of the truth (same kind of maps)."""
    return gradient_energy(pred) / max(gradient_energy(truth), 1e-300)


def nearest_branch(samples: Tensor, branches: Tensor) -> Tensor:
    """Index of the nearest branch (squared distance) of every sample.

    Shapes: samples (B, K, *), branches (B, NB, *) -> (B, K) int64.
    """
    if samples.shape[0] != branches.shape[0] or samples.shape[2:] != branches.shape[2:]:
        raise ValueError(f"samples {tuple(samples.shape)} and branches {tuple(branches.shape)} "
                         "must share the batch and the per-sample shape")
    a, b = samples.flatten(2).double(), branches.flatten(2).double()
    d = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
    return d.argmin(dim=2)


def branch_histogram(assignment: Tensor, num_branches: int) -> Tensor:
    """Relative frequency of each branch index in ``assignment`` (any shape) -> (num_branches,)."""
    counts = torch.bincount(assignment.reshape(-1), minlength=num_branches).double()
    return counts / counts.sum().clamp_min(1)


def total_variation(p: Tensor, q: Tensor) -> float:
    """TV(p, q) = 1/2 sum |p - q| of two distributions over the same outcomes."""
    if p.shape != q.shape:
        raise ValueError(f"distributions over {p.shape[0]} and {q.shape[0]} outcomes")
    return float(0.5 * (p.double() - q.double()).abs().sum())


def per_forecast_tv(p: Tensor, assignment: Tensor) -> float:
    """Mean over forecasts of TV(p, histogram of that forecast's samples).

    Shapes: p (NB,), assignment (B, K) branch indices -> float.
    """
    nb = p.shape[0]
    counts = torch.zeros(assignment.shape[0], nb, dtype=torch.float64)
    counts.scatter_add_(1, assignment, torch.ones(assignment.shape, dtype=torch.float64))
    q = counts / assignment.shape[1]
    return float(0.5 * (q - p.double()[None]).abs().sum(dim=1).mean())


def tv_sampling_floor(p: Tensor, n: int, *, trials: int = 2000, seed: int = 0) -> float:
    """Expected TV between p and the histogram of n exact draws from p (Monte Carlo): what a
    perfect sampler scores with this many samples."""
    g = torch.Generator().manual_seed(seed)
    draws = torch.multinomial(p.double().expand(trials, -1), n, replacement=True, generator=g)
    return per_forecast_tv(p, draws)


def reconstruction_error(compressor: torch.nn.Module, features: Tensor, *,
                         batch: int = 4096) -> float:
    """Normalised MSE of decode(encode(f)) in standardised feature units (0: perfect; 1: as bad
    as predicting each channel's mean). ``compressor`` is a fitted
    :class:`~sciflow.domains.feature_forecasting.autoencoder.Compressor`; features (N, D, h, w)."""
    std = compressor.features
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, features.shape[0], batch):
            f = features[i:i + batch]
            err = (std(compressor.decode(compressor.encode(f))) - std(f)).double().square()
            total += float(err.sum())
            count += err.numel()
    return total / max(count, 1)


@dataclass(frozen=True)
class ForecastScores:
    """Every score of one forecaster on one evaluation set (see the module doc).

    Feature errors in standardised feature units, over all horizon frames. ``miou``/``absrel``/
    ``delta1`` average over all samples; ``*_best`` use each forecast's min-of-K sample.
    ``tv_first``: per-forecast branch TV after one step; ``tv_joint``: over whole-horizon
    branches; ``*_floor``: what a perfect sampler with the same K scores; ``tv_first_pooled``: TV
    of the one-step histogram pooled over all forecasts (calibration of the marginal).
    """

    samples: int
    mse_of_mean: float
    mean_of_k: float
    min_of_k: float
    spread: float
    sharpness: float
    miou: float
    miou_best: float
    absrel: float
    absrel_best: float
    delta1: float
    tv_first: float
    tv_joint: float
    tv_first_pooled: float
    tv_first_floor: float
    tv_joint_floor: float
    branch_hist_first: tuple[float, ...]

    def to_dict(self) -> dict[str, float | int | list[float]]:
        """Plain JSON-able dict of every score."""
        d = dict(self.__dict__)
        d["branch_hist_first"] = list(self.branch_hist_first)
        return d

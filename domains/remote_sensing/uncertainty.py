"""How honest a predicted uncertainty is: spread-skill, CRPS, reliability, on the scored pixels.

For a prediction with mean mu and standard deviation sigma of reflectance, scored against the
truth y on the masked values (the pixels a task fills, all bands):

* spread-skill ratio = mean(sigma) / RMSE(mu): near 1 when the spread is as large as the error
  (0.5-2 is the usual "calibrated enough" band; a tenth means the spread is ten times too small).
* CRPS of the Gaussian N(mu, sigma^2) (Gneiting & Raftery 2007, closed form):
  CRPS = sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)],  z = (y - mu) / sigma,
  the mean absolute error for sigma = 0.
* reliability: the values binned by predicted sigma (equal-count bins); per bin the mean
  sigma and the RMSE of mu (a calibrated prediction has them equal), and the coverage of central
  Gaussian intervals mu +/- z_p sigma against their nominal probability p.

Shapes: mean, std, truth (B, T, C, H, W); mask (B, T, H, W) bool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["UncertaintyScores", "crps_gaussian", "uncertainty_scores", "LEVELS"]

#: nominal probabilities of the central intervals whose coverage is reported
LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class UncertaintyScores:
    """spread_skill = mean std / RMSE; crps (Gaussian); rmse; mean_std; pixels scored (values);
    bins: (mean std, RMSE, count) per std bin, lowest std first; coverage: (nominal, observed)
    per central interval of :data:`LEVELS`."""

    spread_skill: float
    crps: float
    rmse: float
    mean_std: float
    values: int
    bins: tuple[tuple[float, float, int], ...]
    coverage: tuple[tuple[float, float], ...]


def _values(mean: Tensor, std: Tensor, truth: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if not (mean.shape == std.shape == truth.shape) or mean.dim() != 5 \
            or mask.shape != mean.shape[:2] + mean.shape[3:]:
        raise ValueError(f"mean, std, truth must be (B, T, C, H, W) and mask (B, T, H, W); got "
                         f"{tuple(mean.shape)}, {tuple(std.shape)}, {tuple(truth.shape)}, "
                         f"{tuple(mask.shape)}")
    m = mask[:, :, None].expand_as(mean)
    return mean[m].double(), std[m].double(), truth[m].double()


def crps_gaussian(mean: Tensor, std: Tensor, truth: Tensor) -> Tensor:
    """Element-wise CRPS of N(mean, std^2) at ``truth`` (module docstring); |error| where std = 0."""
    err = truth - mean
    safe = std.clamp_min(1e-12)
    z = err / safe
    normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    crps = safe * (z * (2 * normal.cdf(z) - 1) + 2 * normal.log_prob(z).exp() - 1 / math.sqrt(math.pi))
    return torch.where(std > 0, crps, err.abs())


def _z(p: float) -> float:
    """The standard normal quantile of (1 + p) / 2 (half-width of the central p interval)."""
    return math.sqrt(2.0) * float(torch.erfinv(torch.tensor(p, dtype=torch.float64)))


def uncertainty_scores(mean: Tensor, std: Tensor, truth: Tensor, mask: Tensor, *,
                       bins: int = 10) -> UncertaintyScores:
    """Spread-skill ratio, Gaussian CRPS, binned reliability and interval coverage on the masked
    values (module docstring). Raises ValueError when the mask selects nothing."""
    mu, sd, y = _values(mean, std, truth, mask)
    n = mu.numel()
    if n == 0:
        raise ValueError("the mask selects no value to score")
    err = y - mu
    rmse = float(err.pow(2).mean().sqrt())
    mean_std = float(sd.mean())
    order = torch.argsort(sd)
    edges = torch.linspace(0, n, min(bins, n) + 1).round().long().tolist()
    table = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            idx = order[a:b]
            table.append((float(sd[idx].mean()), float(err[idx].pow(2).mean().sqrt()), b - a))
    coverage = tuple((p, float((err.abs() <= _z(p) * sd).double().mean())) for p in LEVELS)
    return UncertaintyScores(spread_skill=mean_std / rmse if rmse > 0 else math.inf,
                             crps=float(crps_gaussian(mu, sd, y).mean()), rmse=rmse,
                             mean_std=mean_std, values=n, bins=tuple(table), coverage=coverage)

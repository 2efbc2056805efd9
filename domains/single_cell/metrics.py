"""Population metrics of Meta Flow Matching's evaluation, two of them beyond :mod:`sciflow.metrics`.

Per (population, condition) the predicted cells are compared with the true target cells by

- W1, W2: exact optimal transport (:func:`sciflow.metrics.wasserstein1` / ``wasserstein2``);
- MMD: RBF MMD^2 averaged over gamma in {2, 1, 0.5, 0.1, 0.01, 0.005} (``mmd_rbf``);
- mean-L2: :func:`mean_l2_of_means`, the distance between the two sets' feature means as the MFM
  code reports it (``Mean_L2``: the root of the mean squared difference over features);
- corr-of-corrs: :func:`feature_correlation_agreement`, the Pearson correlation between the two
  sets' pairwise feature correlations (CellOT's "r2", which is a correlation, not an R^2).

Atanackovic et al. (ICLR 2025) report these per population and average them over populations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from sciflow.metrics import mmd_rbf, wasserstein1, wasserstein2

__all__ = [
    "mean_l2_of_means",
    "feature_correlation_agreement",
    "PopulationScores",
    "score_population",
    "mean_scores",
]

ArrayLike = Tensor | np.ndarray


def _as64(x: ArrayLike, name: str) -> np.ndarray:
    arr = x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be non-empty (n, D) samples, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as64(x, "pred"), _as64(y, "true")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"pred has D={a.shape[1]} features but true has D={b.shape[1]}")
    return a, b


def mean_l2_of_means(pred: ArrayLike, true: ArrayLike) -> float:
    """Distance between feature means, as MFM's ``Mean_L2``.

    mean-L2 = ( (1/D) sum_j (mean_i pred_ij - mean_i true_ij)^2 )^(1/2) = ||mu_p - mu_t|| / sqrt(D).

    Shapes: pred (n, D), true (m, D).
    """
    a, b = _pair(pred, true)
    return float(np.sqrt(np.mean((a.mean(0) - b.mean(0)) ** 2)))


def _pairwise_correlations(x: np.ndarray) -> np.ndarray:
    c = np.corrcoef(x, rowvar=False)
    return c[np.triu_indices(x.shape[1], k=1)]


def feature_correlation_agreement(pred: ArrayLike, true: ArrayLike) -> float:
    """Pearson correlation between the pairwise feature correlations of pred and true.

    r = corr( [rho_jk(pred)]_{j<k}, [rho_jk(true)]_{j<k} ),  rho_jk the Pearson correlation of
    features j and k over cells. 1 means the predicted cells reproduce the co-variation of features
    (CellOT's "r2_pairwise_feat_corrs", Bunne et al. 2023). Needs D >= 3 (two or more feature
    pairs) and at least two cells per set; NaN when a feature is constant in either set.

    Shapes: pred (n, D), true (m, D).
    """
    a, b = _pair(pred, true)
    if a.shape[1] < 3:
        raise ValueError(f"the feature-correlation agreement needs D >= 3 features, got "
                         f"D={a.shape[1]}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("the feature-correlation agreement needs at least 2 cells per set")
    with np.errstate(invalid="ignore", divide="ignore"):
        ca, cb = _pairwise_correlations(a), _pairwise_correlations(b)
        ok = np.isfinite(ca) & np.isfinite(cb)
        if ok.sum() < 2:
            return math.nan
        return float(np.corrcoef(ca[ok], cb[ok])[0, 1])


@dataclass(frozen=True)
class PopulationScores:
    """The metrics of one predicted population (lower is better except ``corr``)."""

    w1: float
    w2: float
    mmd: float
    mean_l2: float
    corr: float  # feature-correlation agreement; NaN for D < 3

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def score_population(pred: ArrayLike, true: ArrayLike) -> PopulationScores:
    """All metrics of one predicted population against its true target cells."""
    a, b = _pair(pred, true)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    corr = feature_correlation_agreement(a, b) if a.shape[1] >= 3 else math.nan
    return PopulationScores(w1=wasserstein1(ta, tb), w2=wasserstein2(ta, tb), mmd=mmd_rbf(ta, tb),
                            mean_l2=mean_l2_of_means(a, b), corr=corr)


def mean_scores(scores: Sequence[PopulationScores]) -> PopulationScores:
    """The average of each metric over populations (NaNs ignored; NaN if all are NaN)."""
    if not scores:
        raise ValueError("no population scores to average")
    out = {}
    for f in fields(PopulationScores):
        vals = np.array([getattr(s, f.name) for s in scores], dtype=np.float64)
        out[f.name] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
    return PopulationScores(**out)

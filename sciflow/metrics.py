"""Distances between sample sets, and RMSD between point clouds.

Distribution metrics take two sample sets x (n, D) and y (m, D), as torch tensors or numpy arrays
(1-D inputs are read as D = 1; trailing dimensions beyond the second are flattened, so images
(n, C, H, W) compare as vectors), and return a Python float. They compute in float64.

- :func:`wasserstein1`, :func:`wasserstein2`: exact optimal transport between the empirical
  measures with uniform weights (POT's network simplex).
- :func:`sliced_wasserstein`: the mean over random directions of the exact 1-D distance
  (Bonneel et al. 2015), seeded.
- :func:`mmd_rbf`: multi-bandwidth RBF maximum mean discrepancy (Gretton et al. 2012), averaged over
  bandwidths as in Meta Flow Matching's evaluation (Atanackovic et al. 2025).
- :func:`energy_distance`: Szekely & Rizzo's energy distance.

Point-cloud metrics: :func:`kabsch_rmsd` per graph, :func:`mean_l2` for paired predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from sciflow import graphs
from sciflow.couplings import kabsch_align

__all__ = [
    "energy_distance",
    "kabsch_rmsd",
    "mean_l2",
    "mmd_rbf",
    "sliced_wasserstein",
    "wasserstein1",
    "wasserstein2",
]

ArrayLike = Tensor | np.ndarray

MFM_GAMMAS: tuple[float, ...] = (2.0, 1.0, 0.5, 0.1, 0.01, 0.005)


def _samples(x: ArrayLike, name: str) -> Tensor:
    """(n, D) float64 tensor (on x's device when x is a tensor), with clear errors."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise TypeError(f"{name} must hold real numbers, got numpy dtype {x.dtype}")
        t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    elif isinstance(x, Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
        t = x.detach().to(torch.float64)
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if t.dim() == 0:
        raise ValueError(f"{name} must be (n, D) samples, got a scalar")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}); need at least one sample")
    t = t.reshape(t.shape[0], -1) if t.dim() != 1 else t[:, None]
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf values")
    return t


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[Tensor, Tensor]:
    a, b = _samples(x, "x"), _samples(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"x has dimension D={a.shape[1]} but y has D={b.shape[1]}; samples must live in one space"
        )
    return a, b.to(a.device)


def _dist(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise Euclidean distances computed directly (no |a|^2 + |b|^2 - 2ab cancellation)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _emd2(cost: Tensor) -> float:
    import ot  # POT imports jax at import time when jax is installed: only when a W is computed

    n, m = cost.shape
    c = cost.cpu().numpy()
    val = ot.emd2(np.full(n, 1.0 / n), np.full(m, 1.0 / m), c, numItermax=max(100_000, 20 * n * m))
    return float(val)


def wasserstein1(x: ArrayLike, y: ArrayLike) -> float:
    """Exact W1 between the empirical measures of x and y (uniform weights).

    W1 = min_{P in U(1/n, 1/m)} sum_ij P_ij || x_i - y_j ||_2.   Shapes: x (n, D), y (m, D).
    """
    a, b = _pair(x, y)
    return _emd2(_dist(a, b))


def wasserstein2(x: ArrayLike, y: ArrayLike) -> float:
    """Exact W2 between the empirical measures of x and y (uniform weights).

    W2 = ( min_{P in U(1/n, 1/m)} sum_ij P_ij || x_i - y_j ||^2 )^(1/2): the square root of the
    optimal squared cost, so it is in the units of x.   Shapes: x (n, D), y (m, D).
    """
    a, b = _pair(x, y)
    return max(_emd2(_dist(a, b).square()), 0.0) ** 0.5


def _wasserstein_1d_pow(u: Tensor, v: Tensor, p: float) -> Tensor:
    """W_p^p between 1-D empirical measures, batched over rows: u (K, n), v (K, m) -> (K,).

    Exact for n != m: W_p^p = int_0^1 |F_u^{-1}(s) - F_v^{-1}(s)|^p ds, with both quantile
    functions piecewise constant on the merged grid of levels {i/n} U {j/m}.
    """
    n, m = u.shape[1], v.shape[1]
    us, _ = torch.sort(u, dim=1)
    vs, _ = torch.sort(v, dim=1)
    levels = torch.cat(
        [
            torch.arange(1, n + 1, dtype=u.dtype, device=u.device) / n,
            torch.arange(1, m + 1, dtype=u.dtype, device=u.device) / m,
        ]
    )
    levels, _ = torch.sort(levels)
    widths = torch.diff(levels, prepend=levels.new_zeros(1))
    mid = levels - 0.5 * widths
    iu = torch.clamp(torch.floor(mid * n).long(), max=n - 1)
    iv = torch.clamp(torch.floor(mid * m).long(), max=m - 1)
    return ((us[:, iu] - vs[:, iv]).abs().pow(p) * widths).sum(dim=1)


def sliced_wasserstein(
    x: ArrayLike, y: ArrayLike, *, n_projections: int = 256, p: float = 2.0, seed: int = 0
) -> float:
    """Sliced Wasserstein distance with random directions (Bonneel et al. 2015).

    SW_p = ( E_{theta ~ U(S^{D-1})} W_p^p(theta^T x, theta^T y) )^(1/p), the expectation a mean over
    ``n_projections`` directions drawn from a generator seeded with ``seed`` (deterministic), each
    1-D distance exact (also for n != m).   Shapes: x (n, D), y (m, D).
    """
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    a, b = _pair(x, y)
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(n_projections, a.shape[1], generator=gen, dtype=torch.float64)
    theta = (theta / theta.norm(dim=1, keepdim=True)).to(a.device)
    w = _wasserstein_1d_pow(theta @ a.T, theta @ b.T, p)
    return float(w.mean()) ** (1.0 / p)


def mmd_rbf(
    x: ArrayLike,
    y: ArrayLike,
    gammas: Sequence[float] = MFM_GAMMAS,
    *,
    unbiased: bool = False,
) -> float:
    """Squared maximum mean discrepancy with RBF kernels, averaged over bandwidths.

    k_gamma(a, b) = exp(-gamma || a - b ||^2),
    MMD^2_gamma = mean k(x, x') + mean k(y, y') - 2 mean k(x, y),
    result = (1 / |gammas|) sum_gamma MMD^2_gamma   (Gretton et al. 2012; the gamma set and the
    averaging follow Meta Flow Matching's evaluation, Atanackovic et al. 2025).

    The default is the **biased** V-statistic (the within-set means include i = j): it is >= 0 and
    exactly 0 for identical sample sets, and is what MFM reports. ``unbiased=True`` drops the
    diagonal terms (the U-statistic): unbiased for the population MMD^2 but it can be negative;
    it needs n, m >= 2. The returned value is a squared MMD (no square root), in kernel units.
    Shapes: x (n, D), y (m, D).
    """
    gammas = tuple(float(g) for g in gammas)
    if not gammas or any(not g > 0 for g in gammas):
        raise ValueError(f"gammas must be a non-empty sequence of positive numbers, got {gammas}")
    a, b = _pair(x, y)
    n, m = a.shape[0], b.shape[0]
    if unbiased and (n < 2 or m < 2):
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set, got n={n}, m={m}")
    dxx, dyy, dxy = _dist(a, a).square(), _dist(b, b).square(), _dist(a, b).square()
    total = 0.0
    for g in gammas:
        kxx, kyy, kxy = (-g * dxx).exp(), (-g * dyy).exp(), (-g * dxy).exp()
        if unbiased:
            xx = (kxx.sum() - n) / (n * (n - 1))
            yy = (kyy.sum() - m) / (m * (m - 1))
        else:
            xx, yy = kxx.mean(), kyy.mean()
        total += float(xx + yy - 2.0 * kxy.mean())
    return total / len(gammas)


def energy_distance(x: ArrayLike, y: ArrayLike) -> float:
    """Energy distance between two sample sets (Szekely & Rizzo 2013).

    D(x, y) = ( 2 E||X - Y|| - E||X - X'|| - E||Y - Y'|| )^(1/2),

    with every expectation the plain mean over all pairs (the V-statistic, i = j included), so
    D >= 0, D = 0 for identical sets, and in 1-D D^2 = 2 int (F_x - F_y)^2: the same value as
    ``scipy.stats.energy_distance``. It is a metric on distributions, invariant to rotations and
    translations applied to both sets.   Shapes: x (n, D), y (m, D).
    """
    a, b = _pair(x, y)
    stat = 2.0 * _dist(a, b).mean() - _dist(a, a).mean() - _dist(b, b).mean()
    return max(float(stat), 0.0) ** 0.5


def kabsch_rmsd(
    x: ArrayLike, y: ArrayLike, batch: ArrayLike | None = None, *, weights: ArrayLike | None = None
) -> Tensor:
    """RMSD per graph after optimal superposition by a proper rotation and a translation.

    RMSD_g = min_{R in SO(D), c} ( sum_{i in g} w_i || R x_i + c - y_i ||^2 / sum_{i in g} w_i )^(1/2)
    (Kabsch 1976). Mirror images are not superposed (det R = +1), and the value is not capped.
    Atoms must be in corresponding order (no permutation search).

    Shapes: x, y (N, D), batch (N,) or None (one graph), weights (N,) -> (B,) float64 tensor.
    """
    a, b = _pair(x, y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"x has {a.shape[0]} atoms but y has {b.shape[0]}; RMSD needs corresponding atoms"
        )
    bt = None
    if batch is not None:
        bt = torch.as_tensor(batch, device=a.device)
        if bt.dim() != 1 or bt.shape[0] != a.shape[0] or bt.is_floating_point():
            raise ValueError(
                f"batch must be an integer vector ({a.shape[0]},), got {bt.dtype} {tuple(bt.shape)}"
            )
        bt = bt.long()
    w = None if weights is None else _samples(weights, "weights")[:, 0].to(a.device)
    aligned = kabsch_align(a, b, bt, w, translate=True)
    sq = (aligned - b).square().sum(dim=1)
    if bt is None:
        bt = torch.zeros(a.shape[0], dtype=torch.long, device=a.device)
    nb = graphs.num_graphs(bt, a.shape[0])
    if w is None:
        msd = graphs.graph_mean(sq, bt, nb)
    else:
        msd = graphs.graph_sum(w * sq, bt, nb) / graphs.graph_sum(w, bt, nb)
    return msd.clamp_min(0.0).sqrt()


def mean_l2(x: ArrayLike, y: ArrayLike) -> float:
    """Mean Euclidean error of paired samples: (1/n) sum_i || x_i - y_i ||.   x, y (n, D)."""
    a, b = _pair(x, y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"mean_l2 pairs rows: x has {a.shape[0]} rows but y has {b.shape[0]}")
    return float((a - b).norm(dim=1).mean())

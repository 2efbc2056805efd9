"""Kabsch alignment of point sets that share one atom order (private to the reactions package).

The rotation R minimising sum_i w_i |R (x_i - x_c) - (y_i - y_c)|^2 comes from the SVD of the
weighted covariance H = sum_i w_i (x_i - x_c)(y_i - y_c)^T = U S V^T:  R = V diag(1, 1, d) U^T with
d = sign(det(V U^T)), which excludes reflections (Kabsch, Acta Cryst. A32, 922, 1976).
"""

from __future__ import annotations

import numpy as np

__all__ = ["kabsch_align", "kabsch_rmsd"]


def kabsch_align(x: np.ndarray, y: np.ndarray, *, masses: np.ndarray | None = None,
                 fit: np.ndarray | list[int] | None = None) -> np.ndarray:
    """Rotate and translate ``x`` onto ``y`` (proper rotation only). Shapes: (N, 3), (N, 3) -> (N, 3).

    With ``fit`` (atom indices), the motion is fitted on those atoms only and applied to all of ``x``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"kabsch_align needs two (N, 3) arrays of one shape, got {x.shape} and {y.shape}")
    w = np.ones(len(x)) if masses is None else np.asarray(masses, dtype=float)
    if fit is not None:
        keep = np.zeros(len(x), dtype=bool)
        keep[np.asarray(fit, dtype=int)] = True
        w = np.where(keep, w, 0.0)
    w = w / w.sum()
    xc = (w[:, None] * x).sum(0)
    yc = (w[:, None] * y).sum(0)
    h = (w[:, None] * (x - xc)).T @ (y - yc)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return (x - xc) @ rot.T + yc


def kabsch_rmsd(x: np.ndarray, y: np.ndarray) -> float:
    """RMSD after optimal proper superposition of ``x`` onto ``y`` (A). Shapes: (N, 3), (N, 3)."""
    return float(np.sqrt(np.mean(np.sum((kabsch_align(x, y) - np.asarray(y)) ** 2, axis=1))))

"""Figures: predicted versus true populations, and the structure of population embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from .populations import PopulationPair

__all__ = ["plot_populations", "plot_embeddings"]


def _pyplot():  # noqa: ANN202 - matplotlib's module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def plot_populations(
    pairs: Sequence[PopulationPair],
    predictions: Mapping[str, Sequence[Tensor]],
    path: str | Path,
    *,
    dims: tuple[int, int] = (0, 1),
    max_points: int = 800,
    limit: float | None = 4.5,
) -> Path:
    """One row per population: source, each method's prediction, and the true target.

    ``predictions`` maps a method name to one (n_i, D) tensor per pair. Points are projected on
    feature ``dims`` and subsampled to ``max_points`` per panel (seeded). Writes a PNG.
    """
    plt = _pyplot()
    methods = list(predictions)
    ncol = len(methods) + 2
    fig, axes = plt.subplots(len(pairs), ncol, figsize=(1.7 * ncol, 1.7 * len(pairs)),
                             squeeze=False)
    rng = np.random.default_rng(0)
    i, j = dims
    for r, pair in enumerate(pairs):
        panels = [("source", pair.source)] + [(m, predictions[m][r]) for m in methods] + \
                 [("target", pair.target if pair.target is not None else pair.source[:0])]
        for c, (title, pts) in enumerate(panels):
            arr = _np(pts)
            if arr.shape[0] > max_points:
                arr = arr[rng.choice(arr.shape[0], max_points, replace=False)]
            ax = axes[r, c]
            ax.scatter(arr[:, i], arr[:, j], s=0.6, c="#3a6fd8" if title != "target" else "k",
                       rasterized=True)
            if limit is not None:
                ax.set_xlim(-limit, limit)
                ax.set_ylim(-limit, limit)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(pair.key, fontsize=8)
    fig.tight_layout(pad=0.2)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_embeddings(
    embeddings: Tensor | np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    *,
    angles: Sequence[float] | None = None,
    highlight: Sequence[str] = (),
) -> Path:
    """Population embeddings projected on their two leading principal components.

    Each population is drawn as its label (e.g. its letter), coloured by ``angles`` on a cyclic
    colour map when given (e.g. each letter's rotation), else by label; labels in ``highlight``
    (held-out populations) are drawn large and bold. Writes a PNG.
    """
    plt = _pyplot()
    z = _np(embeddings).astype(np.float64)
    if z.ndim != 2 or z.shape[0] != len(labels):
        raise ValueError(f"embeddings {z.shape} and {len(labels)} labels disagree")
    if angles is not None and len(angles) != len(labels):
        raise ValueError(f"{len(angles)} angles for {len(labels)} labels")
    z = z - z.mean(0)
    _, sv, vt = np.linalg.svd(z, full_matrices=False)
    xy = z @ vt[:2].T if vt.shape[0] >= 2 else np.c_[z @ vt[:1].T, np.zeros(len(z))]
    share = sv[:2] ** 2 / max(float((sv**2).sum()), 1e-300)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    if angles is not None:
        cmap = plt.get_cmap("hsv")  # cyclic and never near-white
        values = np.mod(np.asarray(angles, dtype=np.float64), 2 * np.pi) / (2 * np.pi)
        mappable = ax.scatter(xy[:, 0], xy[:, 1], c=values * 2 * np.pi, cmap=cmap, vmin=0,
                              vmax=2 * np.pi, s=0)
        colours = [cmap(v) for v in values]
        fig.colorbar(mappable, ax=ax, label="rotation (rad)")
    else:
        names = sorted(set(labels))
        cmap = plt.get_cmap("hsv", len(names) + 1)
        colours = [cmap(names.index(lab)) for lab in labels]
    for (x, y), lab, col in zip(xy, labels, colours):
        big = lab in highlight
        ax.text(x, y, lab, color=col, fontsize=12 if big else 7, ha="center", va="center",
                weight="bold" if big else "normal")
    pad = 0.05 * (xy.max(0) - xy.min(0) + 1e-12)
    ax.set_xlim(xy[:, 0].min() - pad[0], xy[:, 0].max() + pad[0])
    ax.set_ylim(xy[:, 1].min() - pad[1], xy[:, 1].max() + pad[1])
    ax.set_xlabel(f"PC1 ({100 * share[0]:.0f} %)")
    ax.set_ylabel(f"PC2 ({100 * share[1]:.0f} %)" if len(share) > 1 else "")
    title = "population embeddings"
    if highlight:
        title += f" (bold: held out {', '.join(highlight)})"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

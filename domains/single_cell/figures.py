"""Figures: predicted versus true populations, and the structure of population embeddings.

:func:`plot_overlays` is what ``sciflow cells predict/evaluate --plot`` draws: per population, its
source cells, its predicted cells and its real target cells overlaid on one embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from .populations import PopulationPair

__all__ = ["plot_populations", "plot_embeddings", "plot_overlays"]

#: colours of source, real target and predicted cells in :func:`plot_overlays`
COLOURS = {"source": "#9a9a9a", "real target": "#e07b00", "predicted": "#1f5fd1"}


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


def _projection(pairs: Sequence[PopulationPair], dims: tuple[int, int] | None,
                names: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, tuple[str, str]]:
    """Centre and (D, 2) axes to project cells on, and the axis labels."""
    real = np.concatenate([_np(p.source) for p in pairs]
                          + [_np(p.target) for p in pairs if p.target is not None])
    real = real.astype(np.float64)
    if dims is not None:
        axes = np.zeros((real.shape[1], 2))
        axes[dims[0], 0] = axes[dims[1], 1] = 1.0
        labels = tuple(names[d] if names is not None else f"feature {d}" for d in dims)
        return np.zeros(real.shape[1]), axes, labels  # type: ignore[return-value]
    centre = real.mean(0)
    _, sv, vt = np.linalg.svd(real - centre, full_matrices=False)
    share = sv**2 / max(float((sv**2).sum()), 1e-300)
    labels = tuple(f"PC{i + 1} of the real cells shown ({100 * share[i]:.0f} % of variance)"
                   for i in range(2))
    return centre, vt[:2].T, labels  # type: ignore[return-value]


def plot_overlays(
    pairs: Sequence[PopulationPair],
    predicted: Sequence[Tensor | np.ndarray],
    path: str | Path,
    *,
    dims: tuple[int, int] | None = None,
    feature_names: Sequence[str] | None = None,
    title: str = "",
    max_panels: int = 12,
    max_points: int = 600,
) -> Path:
    """Embedding overlays, one panel per pair: source cells (grey), real target cells (orange,
    when the pair has them) and predicted cells (blue), on shared axes.

    The axes are features ``dims`` (e.g. (0, 1): PC1 and PC2 of an ``X_pca`` representation,
    labelled with ``feature_names``) or, for None, the two leading principal axes of the real
    cells of the pairs shown. At most ``max_panels`` pairs (the first ones) and ``max_points``
    cells per set and panel (seeded subsample) are drawn. Writes a PNG and returns its path.
    """
    if len(predicted) != len(pairs):
        raise ValueError(f"{len(predicted)} predictions for {len(pairs)} pairs")
    if not pairs:
        raise ValueError("no pairs to plot")
    plt = _pyplot()
    shown = list(range(min(len(pairs), max_panels)))
    centre, axes, labels = _projection([pairs[i] for i in shown], dims, feature_names)
    ncol = min(4, len(shown))
    nrow = -(-len(shown) // ncol)
    fig, grid = plt.subplots(nrow, ncol, figsize=(3.1 * ncol, 3.0 * nrow + 0.6), squeeze=False,
                             sharex=True, sharey=True)
    rng = np.random.default_rng(0)
    for k, i in enumerate(shown):
        ax, pair = grid[k // ncol, k % ncol], pairs[i]
        sets = [("source", pair.source), ("real target", pair.target),
                ("predicted", predicted[i])]
        counts = []
        for label, pts in sets:
            if pts is None:
                continue
            arr = _np(pts).astype(np.float64)
            counts.append(f"{arr.shape[0]} {label.split()[-1]}")
            if arr.shape[0] > max_points:
                arr = arr[rng.choice(arr.shape[0], max_points, replace=False)]
            xy = (arr - centre) @ axes
            ax.scatter(xy[:, 0], xy[:, 1], s=float(np.clip(2000 / len(arr), 2, 10)), alpha=0.6,
                       c=COLOURS[label], label=label, rasterized=True, linewidths=0)
        ax.set_title(f"{pair.key}\n" + ", ".join(counts), fontsize=8)
        if k // ncol == nrow - 1:
            ax.set_xlabel(labels[0], fontsize=7)
        if k % ncol == 0:
            ax.set_ylabel(labels[1], fontsize=7)
        ax.tick_params(labelsize=6)
    for k in range(len(shown), nrow * ncol):
        grid[k // ncol, k % ncol].set_visible(False)
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=n) for n, c in COLOURS.items()]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, ncol=3)
    more = f" (first {len(shown)} of {len(pairs)} pairs)" if len(shown) < len(pairs) else ""
    fig.suptitle((title + ": " if title else "") + "predicted vs real target vs source cells, "
                 f"per population | treatment{more}", fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

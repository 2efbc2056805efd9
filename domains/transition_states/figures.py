"""The figures of ``ts generate --plot`` and ``ts evaluate --plot`` (matplotlib, Agg, PNG).

- :func:`plot_overlay`: structures of one reaction (R, P, the generated TS, the reference or the
  refined TS) Kabsch-aligned onto the first and drawn on the plane of its two principal axes:
  atoms as dots coloured per structure, bonds (covalent-radius rule) as lines, axes in A;
- :func:`plot_evaluation`: per reaction, the generated TS's RMSD against the (R+P)/2 midpoint's
  (points below the diagonal beat the baseline) and against the per-reaction uncertainty (with
  its Spearman correlation), and the overlays of the best, median and worst reaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

__all__ = ["plot_overlay", "plot_evaluation"]

_STYLES = (("#1f77b4", "-"), ("#d62728", "-"), ("#2ca02c", "--"), ("#7f7f7f", ":"),
           ("#9467bd", "-."))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _frame(first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and principal axes (rows) of a geometry (N, 3)."""
    centre = first.mean(0)
    _, _, vt = np.linalg.svd(first - centre)
    return centre, vt


def _draw(ax: Any, structures: Sequence[tuple[str, Atoms]]) -> None:
    from sciflow.datasets.reactions.align import kabsch_align
    from sciflow.datasets.reactions.molgraph import bond_graph

    ref = structures[0][1].get_positions()
    centre, axes = _frame(ref)
    for k, (label, atoms) in enumerate(structures):
        pos = atoms.get_positions()
        if not np.isfinite(pos).all():
            continue
        pos = kabsch_align(pos, ref) if k else pos
        xy = (pos - centre) @ axes[:2].T
        colour, style = _STYLES[k % len(_STYLES)]
        for i, j in sorted(bond_graph(Atoms(numbers=atoms.numbers, positions=pos))):
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], style, color=colour, lw=1.2, alpha=0.8)
        ax.scatter(xy[:, 0], xy[:, 1], s=12 + 6 * np.sqrt(atoms.numbers), color=colour,
                   label=label, zorder=3, alpha=0.85)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("principal axis 1 (A)")
    ax.set_ylabel("principal axis 2 (A)")


def plot_overlay(path: str | Path, structures: Sequence[tuple[str, Atoms]], *, title: str) -> Path:
    """Overlay ``(label, atoms)`` structures of one reaction (see the module docstring)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    _draw(ax, structures)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


def plot_evaluation(path: str | Path, evaluation: Any, overlays: Sequence[tuple[str, Any, Atoms]],
                    *, title: str) -> Path:
    """RMSD per reaction (vs the midpoint, vs the uncertainty) and three overlays.

    ``overlays`` holds (caption, reaction, generated TS) for the reactions to draw (e.g. best,
    median, worst by RMSD).
    """
    plt = _pyplot()
    rows = evaluation.rows
    rmsd = np.array([r.rmsd for r in rows])
    mid = np.array([r.rmsd_midpoint for r in rows])
    unc = np.array([r.uncertainty for r in rows])
    ok = np.isfinite(rmsd)
    fig = plt.figure(figsize=(12, 7.5))
    ax1 = fig.add_subplot(2, 3, 1)
    ax1.scatter(mid[ok], rmsd[ok], s=12)
    top = 1.05 * max(float(mid.max()), float(rmsd[ok].max()) if ok.any() else 0.0)
    ax1.plot([0, top], [0, top], "k--", lw=0.8, label="as good as (R+P)/2")
    ax1.set_xlabel("RMSD of (R+P)/2 to the reference TS (A)")
    ax1.set_ylabel("RMSD of the generated TS (A)")
    ax1.set_title(f"per reaction (n={len(rows)}); below the line beats the midpoint", fontsize=9)
    ax1.legend(fontsize=8)
    ax2 = fig.add_subplot(2, 3, 2)
    have = ok & np.isfinite(unc)
    if have.any():
        ax2.scatter(unc[have], rmsd[have], s=12, color="#ff7f0e")
        rho = evaluation.summary.uncertainty_spearman
        ax2.set_title(f"uncertainty ({evaluation.uncertainty}) vs error; Spearman "
                      f"{rho:.2f}" if math.isfinite(rho) else "uncertainty vs error", fontsize=9)
    else:
        ax2.text(0.5, 0.5, "no uncertainty measured", ha="center", transform=ax2.transAxes)
    ax2.set_xlabel("per-reaction uncertainty (A)")
    ax2.set_ylabel("RMSD of the generated TS (A)")
    ax3 = fig.add_subplot(2, 3, 3)
    ax3.hist(rmsd[ok], bins=20, alpha=0.7, label="generated")
    ax3.hist(mid, bins=20, alpha=0.5, label="(R+P)/2")
    ax3.set_xlabel("RMSD to the reference TS (A)")
    ax3.set_ylabel("reactions")
    ax3.set_title("distribution", fontsize=9)
    ax3.legend(fontsize=8)
    for k, (caption, reaction, generated) in enumerate(overlays[:3]):
        ax = fig.add_subplot(2, 3, 4 + k)
        _draw(ax, [("reference TS", reaction.transition_state), ("generated TS", generated)])
        ax.set_title(caption, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return Path(path)

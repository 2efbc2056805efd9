"""Scoring a toy flow: W2 to fresh target draws per number of solver steps, and a picture."""

from __future__ import annotations

from pathlib import Path

import torch

from sciflow.datasets.toy2d import TOY2D
from sciflow.metrics import wasserstein2
from sciflow.solvers import odeint

from .model import Model

__all__ = ["evaluate", "plot"]


@torch.no_grad()
def evaluate(model: Model, *, n: int = 2000, nfes: tuple[int, ...] = (1, 2, 4, 8, 32),
             seed: int = 1) -> dict[str, float]:
    """W2 between ``n`` samples and ``n`` fresh target draws for Euler at each NFE in ``nfes`` and
    for dopri5 (``"dopri5"``, with its evaluations in ``"dopri5-nfe"``); ``"floor"`` is W2 of two
    independent target draws, the best any sampler can score at this ``n``."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    x0 = TOY2D[cfg.source](n, generator=g)
    ref = TOY2D[cfg.target](n, generator=g)
    out: dict[str, float] = {}
    for nfe in nfes:
        out[f"euler-{nfe}"] = wasserstein2(odeint(model.net, x0, method="euler", steps=nfe).x, ref)
    sol = odeint(model.net, x0, method="dopri5", atol=1e-5, rtol=1e-5)
    out["dopri5"] = wasserstein2(sol.x, ref)
    out["dopri5-nfe"] = float(sol.nfe)
    out["floor"] = wasserstein2(TOY2D[cfg.target](n, generator=g), ref)
    return out


def plot(models: dict[str, Model], path: str | Path, *, n: int = 1500) -> Path:
    """Samples and a few trajectories of each model beside the target, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(models.values())).config
    g = torch.Generator().manual_seed(7)
    x0 = TOY2D[first.source](n, generator=g)
    ref = TOY2D[first.target](n, generator=g)
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(4 * (len(models) + 1), 4), squeeze=False)
    axes[0, 0].scatter(ref[:, 0], ref[:, 1], s=2, c="k")
    axes[0, 0].set_title(f"target: {first.target}")
    for ax, (name, model) in zip(axes[0, 1:], models.items()):
        with torch.no_grad():
            sol = odeint(model.net, x0, method="euler", steps=32, return_trajectory=True)
        traj = torch.stack(sol.trajectory)  # (T, n, 2)
        for i in range(0, n, max(n // 40, 1)):
            ax.plot(traj[:, i, 0], traj[:, i, 1], lw=0.5, c="tab:blue", alpha=0.5)
        ax.scatter(x0[:, 0], x0[:, 1], s=1, c="tab:gray", alpha=0.4)
        ax.scatter(sol.x[:, 0], sol.x[:, 1], s=2, c="tab:red")
        ax.set_title(f"{name}: Euler 32 steps")
    for ax in axes[0]:
        ax.set_aspect("equal")
        ax.set_xlim(-6, 6)
        ax.set_ylim(-6, 6)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

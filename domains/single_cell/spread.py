"""Per-population spread: how much a prediction moves when its source cells are drawn again.

A population flow maps a *sample* of a population's source cells to a predicted target
population; another sample of the same population (another well, another sequencing run) would
give another prediction. :func:`population_spread` measures that by the bootstrap: each pair's
source cells are redrawn with replacement ``repeats`` times (MFM also re-embeds the population
from each redraw) and pushed through the flow, and

    spread = ( 1/(R-1) sum_r ||mean(pred_r) - mean_bar||^2 / D )^(1/2),

the standard deviation of the predicted population mean over the R redraws, in the units of
mean-L2 (:func:`~.metrics.mean_l2_of_means`: root mean square over the D features). It is what a
prediction's mean is uncertain by because the source sample is finite; it does not contain the
model's own error (bias), which :mod:`.evaluation` measures against the truth and compares with
it (the spread-skill ratio). ``separation`` is the mean-L2 distance from a pair's predicted mean
to the nearest other population's predicted mean under the same condition: a model that tells
populations apart has separations well above the spreads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from sciflow.errors import InputError
from sciflow.progress import progress as progress_bar

from .config import ATOL, RTOL, SAMPLE_STEPS, SOLVER
from .model import Model
from .populations import CellPopulations, PopulationPair, as_pairs
from .sampling import sample

__all__ = ["PopulationSpread", "population_spread", "separations"]


@dataclass(frozen=True)
class PopulationSpread:
    """The spread of one pair's prediction over bootstrap redraws of its source cells.

    spread: std of the predicted mean over the redraws (mean-L2 units; module docstring).
    separation: mean-L2 distance to the nearest other population's predicted mean under the
    same condition (NaN when there is none). repeats: the redraws R.
    """

    spread: float
    separation: float
    repeats: int

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _rms(x: Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


def separations(pairs: Sequence[PopulationPair], means: Sequence[Tensor]) -> list[float]:
    """Per pair, the mean-L2 distance from its mean (D,) to the nearest other population's mean
    under the same condition (NaN without one)."""
    out = []
    for i, (p, m) in enumerate(zip(pairs, means)):
        others = [_rms(m - means[j]) for j, q in enumerate(pairs)
                  if j != i and q.condition == p.condition and q.population != p.population]
        out.append(min(others) if others else math.nan)
    return out


@torch.no_grad()
def population_spread(
    model: Model,
    cells: CellPopulations | Sequence[PopulationPair],
    *,
    predictions: Sequence[Tensor] | None = None,
    repeats: int = 4,
    seed: int = 0,
    solver: str = SOLVER,
    steps: int = SAMPLE_STEPS,
    atol: float = ATOL,
    rtol: float = RTOL,
    max_rows: int = 50_000,
    device: str | None = None,
    progress: bool | None = False,
) -> tuple[PopulationSpread, ...]:
    """The bootstrap spread of every pair's prediction (module docstring).

    ``repeats`` (>= 2) redraws of each pair's source cells, seeded by ``seed``, are sampled with
    ``solver``, ``steps``, ``atol``, ``rtol``, ``max_rows`` and ``device`` as by
    :func:`~.sampling.sample`. ``predictions`` (the point predictions, one (n_i, D) tensor per
    pair) give the means the separations are measured between (default: the redraws' mean).
    ``progress``: None or True report each redraw.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise InputError(f"repeats={repeats!r}: the spread needs an integer >= 2 redraws")
    pairs = as_pairs(cells)
    if predictions is not None and len(predictions) != len(pairs):
        raise InputError(f"got {len(predictions)} predictions for {len(pairs)} pairs")
    means: list[list[Tensor]] = [[] for _ in pairs]
    bar = progress_bar(total=repeats, desc="spread", unit="redraw", enabled=progress)
    for r in range(repeats):
        g = torch.Generator().manual_seed(1_000_003 * (seed + 1) + r)
        redrawn = [replace(p, source=p.source[torch.randint(p.source.shape[0],
                                                            (p.source.shape[0],), generator=g)],
                           source_names=None) for p in pairs]
        preds = sample(model, redrawn, solver=solver, steps=steps, atol=atol, rtol=rtol,
                       max_rows=max_rows, seed=seed + 1 + r, device=device, progress=False)
        for i, x in enumerate(preds):
            means[i].append(x.double().mean(0))
        bar.update(1)
    bar.close()
    stacked = [torch.stack(m) for m in means]  # (R, D) each
    spread = [float(((s - s.mean(0)) ** 2).sum(0).div(repeats - 1).mean().sqrt())
              for s in stacked]
    centre = [s.mean(0) for s in stacked] if predictions is None else \
        [x.double().mean(0) for x in predictions]
    sep = separations(pairs, centre)
    return tuple(PopulationSpread(spread=a, separation=b, repeats=repeats)
                 for a, b in zip(spread, sep))

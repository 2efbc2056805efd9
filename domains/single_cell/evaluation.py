"""Scoring predicted populations against the true target cells, population by population.

:func:`score` compares each prediction with its pair's target cells (:mod:`.metrics`: W1, W2,
RBF-MMD, mean-L2, corr-of-corrs); :func:`evaluate` predicts with a model (and, on request, the
dummy baselines of :mod:`.baselines`, or predictions read from a file) and scores everything in
one :class:`Evaluation`, whose :meth:`~Evaluation.table` averages over populations as
Atanackovic et al. (ICLR 2025) report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from sciflow.errors import InputError
from sciflow.progress import progress as progress_bar

from .baselines import BASELINES, baseline_predictions
from .config import ATOL, RTOL, SAMPLE_STEPS, SOLVER
from .metrics import PopulationScores, mean_scores, score_population
from .model import Model
from .populations import CellDataError, CellPopulations, PopulationPair, as_pairs, subsample
from .sampling import sample

__all__ = ["Evaluation", "evaluate", "score", "scores_table"]


def score(predictions: Sequence[Tensor], pairs: CellPopulations | Sequence[PopulationPair], *,
          max_cells: int | None = None, seed: int = 0,
          progress: bool | None = False) -> list[PopulationScores]:
    """Score each prediction (n_i, D) against its pair's true target cells.

    ``max_cells`` caps both sets by a seeded subsample (exact OT is O(n^3)); None uses all cells.
    ``progress``: None or True report each population, False is silent.
    """
    pairs = as_pairs(pairs)
    if max_cells is not None and (isinstance(max_cells, bool) or not isinstance(max_cells, int)
                                  or max_cells < 2):
        raise InputError(f"max_cells={max_cells!r}: expected None or an integer >= 2")
    if len(predictions) != len(pairs):
        raise InputError(f"got {len(predictions)} predictions for {len(pairs)} populations")
    for p in pairs:
        if p.target is None or p.target.shape[0] == 0:
            raise CellDataError(f"population {p.key!r} has no target cells to evaluate against")
    out = []
    bar = progress_bar(total=len(pairs), desc="score", unit="population", enabled=progress)
    for i, (pred, p) in enumerate(zip(predictions, pairs)):
        out.append(score_population(subsample(pred, max_cells, seed + i),
                                    subsample(p.target, max_cells, seed + i)))
        bar.update(1)
    bar.close()
    return out


def scores_table(rows: Mapping[str, PopulationScores], *, digits: int = 4) -> str:
    """A markdown table of named scores (one row per name)."""
    lines = ["| method | W1 | W2 | MMD | mean-L2 | corr-of-corrs |", "|---|---|---|---|---|---|"]
    for name, s in rows.items():
        cells = [s.w1, s.w2, s.mmd, s.mean_l2, s.corr]
        lines.append(f"| {name} | " + " | ".join(
            "n/a" if math.isnan(v) else f"{v:.{digits}f}" for v in cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Evaluation:
    """Scores of every method on every (population, condition) pair.

    pairs: (population, condition) of each scored pair, in order; scores: method name -> one
    :class:`PopulationScores` per pair.
    """

    pairs: tuple[tuple[str, str | None], ...]
    scores: dict[str, tuple[PopulationScores, ...]]

    def mean(self) -> dict[str, PopulationScores]:
        """Each method's scores averaged over populations (NaNs ignored)."""
        return {name: mean_scores(s) for name, s in self.scores.items()}

    def table(self, *, digits: int = 4) -> str:
        """The markdown table of :meth:`mean`."""
        return scores_table(self.mean(), digits=digits)

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per (method, pair): method, population, condition and the metrics."""
        return [{"method": name, "population": pop, "condition": cond, **s.as_dict()}
                for name, scores in self.scores.items()
                for (pop, cond), s in zip(self.pairs, scores)]

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": [list(p) for p in self.pairs],
                "mean": {k: v.as_dict() for k, v in self.mean().items()},
                "scores": {k: [s.as_dict() for s in v] for k, v in self.scores.items()}}


def evaluate(
    model: Model | Sequence[Tensor] | None,
    cells: CellPopulations | Sequence[PopulationPair],
    *,
    predictions: Mapping[str, Sequence[Tensor]] | None = None,
    baselines: Iterable[str] = (),
    mean_shift: Mapping[str, Tensor] | None = None,
    max_cells: int | None = None,
    solver: str = SOLVER,
    steps: int = SAMPLE_STEPS,
    atol: float = ATOL,
    rtol: float = RTOL,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = False,
) -> Evaluation | list[PopulationScores]:
    """Predict the populations of ``cells`` with ``model`` and score them (an :class:`Evaluation`).

    ``predictions`` adds named precomputed predictions (one tensor per pair); ``baselines`` adds
    any of :data:`~.baselines.BASELINES` (SHIFT takes ``mean_shift``, default the model's; it is
    skipped without one). The model's row is named by its type (``"MFM"``). ``solver``, ``steps``,
    ``atol``, ``rtol``, ``seed``, ``device`` go to :func:`~.sampling.sample`; ``max_cells`` to
    :func:`score`; ``progress`` to both.

    sciflow 0.1's call ``evaluate(predictions, pairs, max_cells=...)`` (a list of tensors first)
    still scores them and returns the list of PopulationScores, as :func:`score` does.
    """
    if model is not None and not isinstance(model, Model):
        return score(model, cells, max_cells=max_cells, seed=seed)
    pairs = as_pairs(cells)
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise InputError(f"baselines={unknown}: choose from {list(BASELINES)}")
    runs: dict[str, Sequence[Tensor]] = {}
    if model is not None:
        runs[model.config.model_type.upper()] = sample(
            model, pairs, solver=solver, steps=steps, atol=atol, rtol=rtol, seed=seed,
            device=device, progress=progress)
        mean_shift = model.mean_shift if mean_shift is None else mean_shift
    runs.update(predictions or {})
    for kind in baselines:
        if kind == "shift" and mean_shift is None:
            continue  # needs the training shift stored in a model
        runs[kind.upper()] = baseline_predictions(kind, pairs, mean_shift=mean_shift)
    if not runs:
        raise InputError("nothing to evaluate: pass a model, predictions or baselines")
    scores = {name: tuple(score(p, pairs, max_cells=max_cells, seed=seed, progress=progress))
              for name, p in runs.items()}
    return Evaluation(pairs=tuple((p.population, p.condition) for p in pairs), scores=scores)

"""The dummy predictions a population flow must beat (no training).

- BASE: the source cells as they are;
- SHIFT: the source cells plus the mean training shift of the condition,
  mean over training populations of mean(target) - mean(source) (:func:`mean_training_shift`);
- IDEAL-SHIFT: the source cells recentred on the true target mean (an oracle: needs the targets).

A model that scores worse than BASE has learned nothing a user could not get by predicting "no
change": :func:`worse_than_base` says so, and :func:`~.evaluation.evaluate` raises it as a
:class:`WorseThanBaselineWarning` (printed by the command line) and prints it under its table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from sciflow.errors import InputError, WorseThanBaselineWarning

from .metrics import PopulationScores, mean_scores
from .populations import CellDataError, CellPopulations, PopulationPair

__all__ = ["BASELINES", "NO_CONDITION", "WorseThanBaselineWarning", "condition_key",
           "mean_training_shift", "baseline_predictions", "worse_than_base"]

BASELINES: tuple[str, ...] = ("base", "shift", "ideal-shift")
#: the key of ``mean_shift`` when the data have no condition column (JSON needs a string)
NO_CONDITION = ""


def condition_key(condition: str | None) -> str:
    """The ``mean_shift`` key of a condition (:data:`NO_CONDITION` for None)."""
    return NO_CONDITION if condition is None else condition


def mean_training_shift(cells: CellPopulations) -> dict[str, Tensor]:
    """Per condition, the mean over populations of mean(target) - mean(source): (D,) each."""
    sums: dict[str, list[Tensor]] = {}
    for p in cells.pairs:
        if p.target is None or p.target.shape[0] == 0:
            raise CellDataError(f"population {p.key!r} has no target cells")
        sums.setdefault(condition_key(p.condition), []).append(p.target.mean(0) - p.source.mean(0))
    return {k: torch.stack(v).mean(0) for k, v in sums.items()}


def baseline_predictions(kind: str, pairs: Sequence[PopulationPair], *,
                         mean_shift: Mapping[str, Tensor] | None = None) -> list[Tensor]:
    """BASE, SHIFT (needs ``mean_shift``, e.g. ``model.mean_shift``) or IDEAL-SHIFT (needs the
    targets): one (n_i, D) tensor per pair."""
    if kind not in BASELINES:
        raise InputError(f"baseline {kind!r}; choose from {list(BASELINES)}")
    out = []
    for p in pairs:
        if kind == "base":
            out.append(p.source.clone())
        elif kind == "shift":
            if mean_shift is None:
                raise InputError("the SHIFT baseline needs mean_shift (from training data, e.g. "
                                 "model.mean_shift)")
            key = condition_key(p.condition)
            if key not in mean_shift:
                raise InputError(f"no training shift for condition {p.condition!r}; known: "
                                 f"{sorted(mean_shift)}")
            out.append(p.source + mean_shift[key].to(p.source.dtype))
        else:
            if p.target is None:
                raise CellDataError(f"IDEAL-SHIFT needs the true target cells of {p.key!r}")
            out.append(p.source - p.source.mean(0) + p.target.mean(0))
    return out


def worse_than_base(name: str, scores: Sequence[PopulationScores],
                    base: Sequence[PopulationScores]) -> str | None:
    """The warning text when ``name``'s mean W1 over populations is not below BASE's, else None.

    W1 is the primary score (Atanackovic et al. 2025 report it first); the text also counts the
    populations on which ``name`` is worse.
    """
    if len(scores) != len(base) or not scores:
        raise InputError(f"got {len(scores)} scores of {name} but {len(base)} of BASE")
    mine, theirs = mean_scores(scores).w1, mean_scores(base).w1
    if not mine >= theirs:  # also None for NaN
        return None
    worse = sum(a.w1 >= b.w1 for a, b in zip(scores, base))
    return (f"{name} scores worse than BASE (predicting the source cells unchanged): mean W1 "
            f"{mine:.4g} vs {theirs:.4g}, worse on {worse} of {len(scores)} populations. The "
            "model has not learned the treatment's effect on these populations: train longer, "
            "check the condition column and control level it was trained with, or compare its "
            "scores on the training populations")

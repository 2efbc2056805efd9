"""Scoring predicted populations against the true target cells, population by population.

:func:`score` compares each prediction with its pair's target cells (:mod:`.metrics`: W1, W2,
RBF-MMD, mean-L2, corr-of-corrs); :func:`evaluate` predicts with a model (and, on request, the
dummy baselines of :mod:`.baselines`, or predictions read from a file) and scores everything in
one :class:`Evaluation`, whose :meth:`~Evaluation.table` averages over populations as
Atanackovic et al. (ICLR 2025) report.

Honest by default: BASE (the source cells unchanged) is always scored, and every model or
prediction whose mean W1 is not below BASE's raises a
:class:`~.baselines.WorseThanBaselineWarning` and is flagged under the table. With
``spread_repeats`` the model's per-population spread (:mod:`.spread`) is measured and compared
with its actual error, the distance between the predicted and the true target means (mean-L2 on
all cells), by the spread-skill ratio

    ratio = RMS_i(error_i) / RMS_i( sqrt(spread_i^2 + noise_i^2) ),

noise_i = (mean_j var_j(target_i) / m_i)^(1/2) the sampling error of the true target mean of
m_i cells: an unbiased model whose spread is right has ratio ~ 1; > 1 means the errors are larger
than the spread says (the model is biased, or its spread too small).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from sciflow.errors import InputError
from sciflow.progress import progress as progress_bar

from .baselines import BASELINES, WorseThanBaselineWarning, baseline_predictions, worse_than_base
from .config import ATOL, RTOL, SAMPLE_STEPS, SOLVER, SPREAD_REPEATS
from .metrics import PopulationScores, mean_l2_of_means, mean_scores, score_population
from .model import Model
from .populations import CellDataError, CellPopulations, PopulationPair, as_pairs, subsample
from .sampling import sample
from .spread import PopulationSpread, population_spread

__all__ = ["Evaluation", "evaluate", "score", "scores_table", "target_noise"]

_DUMMIES = {k.upper() for k in BASELINES}


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


def target_noise(target: Tensor) -> float:
    """The sampling error of a target population's mean, (mean_j var_j / m)^(1/2) (mean-L2
    units), from its m cells (m >= 2)."""
    x = target.double()
    return float((x.var(0, unbiased=True).mean() / x.shape[0]).sqrt())


def scores_table(rows: Mapping[str, PopulationScores], *, digits: int = 4,
                 versus: str | None = None) -> str:
    """A markdown table of named scores (one row per name); with ``versus`` (a row name, e.g.
    ``"BASE"``) a last column gives each row's W1 relative to that row's."""
    head = "| method | W1 | W2 | MMD | mean-L2 | corr-of-corrs |"
    rule = "|---|---|---|---|---|---|"
    ref = rows.get(versus) if versus is not None else None
    if ref is not None:
        head, rule = head + f" W1 vs {versus} |", rule + "---|"
    lines = [head, rule]
    for name, s in rows.items():
        cells = [s.w1, s.w2, s.mmd, s.mean_l2, s.corr]
        line = f"| {name} | " + " | ".join(
            "n/a" if math.isnan(v) else f"{v:.{digits}f}" for v in cells) + " |"
        if ref is not None:
            rel = s.w1 / ref.w1 - 1.0 if ref.w1 > 0 else math.nan
            mark = "" if name == versus or math.isnan(rel) else (" worse" if rel >= 0 else "")
            line += (" n/a |" if math.isnan(rel) else f" {100 * rel:+.0f} %{mark} |")
        lines.append(line)
    return "\n".join(lines)


def _rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    rx, ry = np.argsort(np.argsort(x[ok])), np.argsort(np.argsort(y[ok]))
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class Evaluation:
    """Scores of every method on every (population, condition) pair.

    pairs: (population, condition) of each scored pair, in order; scores: method name -> one
    :class:`PopulationScores` per pair (BASE always among them). spread: method -> one
    :class:`~.spread.PopulationSpread` per pair (the model's, with ``spread_repeats``). errors:
    method -> the mean-L2 between its predicted and the true target means on all cells, per
    pair (the error the spread is compared with). noise: per pair, :func:`target_noise`.
    warnings: the text of every :class:`~.baselines.WorseThanBaselineWarning` raised.
    predictions: the model's predicted cells, one (n_i, D) tensor per pair (for figures; not
    part of the comparison).
    """

    pairs: tuple[tuple[str, str | None], ...]
    scores: dict[str, tuple[PopulationScores, ...]]
    spread: dict[str, tuple[PopulationSpread, ...]] = field(default_factory=dict)
    errors: dict[str, tuple[float, ...]] = field(default_factory=dict)
    noise: tuple[float, ...] = ()
    warnings: tuple[str, ...] = ()
    predictions: dict[str, tuple[Tensor, ...]] = field(default_factory=dict, repr=False,
                                                       compare=False)

    def mean(self) -> dict[str, PopulationScores]:
        """Each method's scores averaged over populations (NaNs ignored)."""
        return {name: mean_scores(s) for name, s in self.scores.items()}

    def spread_skill(self, method: str) -> float:
        """The spread-skill ratio of ``method`` (module docstring; 1 = calibrated)."""
        err = np.asarray(self.errors[method], dtype=np.float64)
        spread = np.asarray([s.spread for s in self.spread[method]], dtype=np.float64)
        expected = np.sqrt(spread**2 + np.asarray(self.noise, dtype=np.float64) ** 2)
        denom = math.sqrt(float(np.mean(expected**2)))
        return math.sqrt(float(np.mean(err**2))) / denom if denom > 0 else math.nan

    def spread_rank_correlation(self, method: str) -> float:
        """Spearman correlation over pairs between ``method``'s spread and its error (NaN for
        fewer than 3 pairs)."""
        return _rank_correlation([s.spread for s in self.spread[method]], self.errors[method])

    def table(self, *, digits: int = 4) -> str:
        """The markdown table of :meth:`mean` (with each row's W1 against BASE), the spread and
        its calibration, and a line per warning."""
        lines = [scores_table(self.mean(), digits=digits, versus="BASE")]
        for name, spread in self.spread.items():
            values = [s.spread for s in spread]
            seps = [s.separation for s in spread if math.isfinite(s.separation)]
            lines.append(
                f"\n{name} spread over {spread[0].repeats} bootstrap redraws of the source cells "
                f"(std of the predicted mean, mean-L2 units): median {np.median(values):.3g} "
                f"(range {min(values):.3g} to {max(values):.3g})"
                + (f"; nearest other population's prediction at median {np.median(seps):.3g}"
                   if seps else "")
                + f". Spread-skill ratio {self.spread_skill(name):.3g} (RMS mean-L2 error over "
                "RMS error expected from the spread and the target's own sampling noise; 1 = "
                "calibrated, > 1: errors larger than the spread says); rank correlation of "
                f"spread and error {self.spread_rank_correlation(name):.2f}.")
        lines += [f"\n**warning**: {text}" for text in self.warnings]
        return "\n".join(lines)

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per (method, pair): method, population, condition, the metrics and,
        for a method with a spread, spread, separation, error and target_noise."""
        out = []
        for name, scores in self.scores.items():
            for i, ((pop, cond), s) in enumerate(zip(self.pairs, scores)):
                row: dict[str, Any] = {"method": name, "population": pop, "condition": cond,
                                       **s.as_dict()}
                if name in self.spread:
                    row.update(spread=self.spread[name][i].spread,
                               separation=self.spread[name][i].separation,
                               error=self.errors[name][i], target_noise=self.noise[i])
                out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": [list(p) for p in self.pairs],
                "mean": {k: v.as_dict() for k, v in self.mean().items()},
                "scores": {k: [s.as_dict() for s in v] for k, v in self.scores.items()},
                "spread": {k: [s.as_dict() for s in v] for k, v in self.spread.items()},
                "spread_skill": {k: self.spread_skill(k) for k in self.spread},
                "errors": {k: list(v) for k, v in self.errors.items()},
                "noise": list(self.noise), "warnings": list(self.warnings)}


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
    spread_repeats: int = SPREAD_REPEATS,
    device: str | None = None,
    progress: bool | None = False,
) -> Evaluation | list[PopulationScores]:
    """Predict the populations of ``cells`` with ``model`` and score them (an :class:`Evaluation`).

    ``predictions`` adds named precomputed predictions (one tensor per pair); BASE is always
    scored, and ``baselines`` adds SHIFT and IDEAL-SHIFT (:data:`~.baselines.BASELINES`; SHIFT
    takes ``mean_shift``, default the model's, and is skipped without one). The model's row is
    named by its type (``"MFM"``). A model or prediction worse than BASE on mean W1 raises a
    :class:`~.baselines.WorseThanBaselineWarning`. ``spread_repeats`` (default
    :data:`~.config.SPREAD_REPEATS`; 0: none) also measures the model's spread over that many
    bootstrap redraws (:func:`~.spread.population_spread`) and its calibration. ``solver``, ``steps``, ``atol``, ``rtol``, ``seed``, ``device`` go to
    :func:`~.sampling.sample`; ``max_cells`` to :func:`score`; ``progress`` to both.

    sciflow 0.1's call ``evaluate(predictions, pairs, max_cells=...)`` (a list of tensors first)
    still scores them and returns the list of PopulationScores, as :func:`score` does.
    """
    if model is not None and not isinstance(model, Model):
        return score(model, cells, max_cells=max_cells, seed=seed)
    if isinstance(spread_repeats, bool) or not isinstance(spread_repeats, int) or \
            spread_repeats < 0 or spread_repeats == 1:
        raise InputError(f"spread_repeats={spread_repeats!r}: expected 0 (no spread) or an "
                         "integer >= 2")
    pairs = as_pairs(cells)
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise InputError(f"baselines={unknown}: choose from {list(BASELINES)}")
    runs: dict[str, Sequence[Tensor]] = {}
    name = None
    if model is not None:
        name = model.config.model_type.upper()
        runs[name] = sample(model, pairs, solver=solver, steps=steps, atol=atol, rtol=rtol,
                            seed=seed, device=device, progress=progress)
        mean_shift = model.mean_shift if mean_shift is None else mean_shift
    runs.update(predictions or {})
    for kind in dict.fromkeys(("base", *baselines)):
        if kind == "shift" and mean_shift is None:
            continue  # needs the training shift stored in a model
        runs[kind.upper()] = baseline_predictions(kind, pairs, mean_shift=mean_shift)
    scores = {k: tuple(score(p, pairs, max_cells=max_cells, seed=seed, progress=progress))
              for k, p in runs.items()}
    found = []
    for k in scores:
        text = None if k in _DUMMIES else worse_than_base(k, scores[k], scores["BASE"])
        if text is not None:
            warnings.warn(text, WorseThanBaselineWarning, stacklevel=2)
            found.append(text)
    spread, errors, noise = {}, {}, ()
    if name is not None and spread_repeats:
        spread[name] = population_spread(model, pairs, predictions=runs[name],
                                         repeats=spread_repeats, seed=seed, solver=solver,
                                         steps=steps, atol=atol, rtol=rtol, device=device,
                                         progress=progress)
        errors[name] = tuple(mean_l2_of_means(x, p.target) for x, p in zip(runs[name], pairs))
        noise = tuple(target_noise(p.target) for p in pairs)
    return Evaluation(pairs=tuple((p.population, p.condition) for p in pairs), scores=scores,
                      spread=spread, errors=errors, noise=noise, warnings=tuple(found),
                      predictions={} if name is None else {name: tuple(runs[name])})

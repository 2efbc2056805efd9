"""Evaluating a TS generator on reactions with known TSs: generate in one batch, score, time.

:func:`evaluate` generates the TS of every reaction (one ragged batch), scores each against its
reference (:mod:`.metrics`: Kabsch RMSD, optionally single-point energy errors) and times the
batched call and one-reaction calls. A reaction whose generated TS diverged (NaN/inf) is kept as a
failure (RMSD inf, counted in ``summary.generation_failures``) rather than stopping the run.
:meth:`Evaluation.to_dict` / :meth:`Evaluation.to_json` are strict JSON (NaN and inf -> null).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sciflow.errors import InputError
from sciflow.outputs import dumps_json

from .metrics import (
    CHEMICAL_ACCURACY_KCAL,
    EV_TO_KCAL,
    EvaluationSummary,
    ReactionScore,
    pair_rmsd,
    score,
    single_point,
    summarize,
)
from .model import Model
from .ranking import CalculatorFactory
from .sampling import sample_many

__all__ = ["Evaluation", "evaluate", "EV_TO_KCAL", "CHEMICAL_ACCURACY_KCAL", "ReactionScore",
           "EvaluationSummary", "pair_rmsd", "single_point", "score", "summarize"]


@dataclass(frozen=True)
class Evaluation:
    """Per-reaction scores, the summary, and the generation settings and timings (seconds per
    reaction: ``seconds_batched`` inside the one batch, ``seconds_single`` generated alone)."""

    rows: tuple[ReactionScore, ...]
    summary: EvaluationSummary
    samples: int
    steps: int
    solver: str
    seconds_batched: float
    seconds_single: float | None

    @property
    def method(self) -> str:
        """Former name of :attr:`solver`."""
        return self.solver

    def to_dict(self) -> dict[str, Any]:
        return {"summary": asdict(self.summary), "rows": [asdict(r) for r in self.rows],
                "samples": self.samples, "sample_steps": self.steps, "solver": self.solver,
                "seconds_batched": self.seconds_batched, "seconds_single": self.seconds_single}

    def to_json(self) -> str:
        """Strict JSON text of :meth:`to_dict` (no bare NaN or Infinity)."""
        return dumps_json(self.to_dict(), indent=1)


def evaluate(model: Model, reactions: Sequence[Any], *, samples: int = 1,
             sample_steps: int | None = None, solver: str | None = None, seed: int = 0,
             calculator: CalculatorFactory | None = None, time_single: bool = True,
             steps: int | None = None, method: str | None = None) -> Evaluation:
    """Generate the TS of every reaction (one batch) and score it against the reference.

    With ``calculator`` the generated and reference TSs get single-point energies. ``steps`` and
    ``method`` are the former names of ``sample_steps`` and ``solver``.
    """
    reactions = list(reactions)
    if not reactions:
        raise InputError("evaluate() got no reactions; pass reactions with reference TSs")
    sample_steps = steps if sample_steps is None else sample_steps
    solver = method if solver is None else solver
    sample_steps = model.default_steps if sample_steps is None else sample_steps
    solver = solver or model.default_solver
    pairs = [(r.reactant, r.product) for r in reactions]
    kw = dict(samples=samples, sample_steps=sample_steps, solver=solver, seed=seed,
              nonfinite="keep")
    t0 = time.perf_counter()
    results = sample_many(model, pairs, **kw)
    batched = (time.perf_counter() - t0) / len(reactions)
    single = None
    if time_single:
        t1 = time.perf_counter()
        for pair in pairs:
            sample_many(model, [pair], **kw)
        single = (time.perf_counter() - t1) / len(reactions)
    rows = tuple(score(r, g.best, calculator=calculator) for r, g in zip(reactions, results))
    return Evaluation(rows=rows, summary=summarize(rows), samples=samples, steps=sample_steps,
                      solver=solver, seconds_batched=batched, seconds_single=single)

"""Evaluating a TS generator on reactions with known TSs: generate in one batch, score, time.

:func:`evaluate` generates the TS of every reaction (one ragged batch), scores each against its
reference (:mod:`.metrics`: Kabsch RMSD, optionally single-point energy errors) and times the
batched call and one-reaction calls. A reaction whose generated TS diverged (NaN/inf) is kept as a
failure (RMSD inf, counted in ``summary.generation_failures``) rather than stopping the run.
:meth:`Evaluation.to_dict` / :meth:`Evaluation.to_json` are strict JSON (NaN and inf -> null),
with what every score means. Each reaction also gets an uncertainty (the spread of its K samples
or the disagreement of its R->P and P->R generations) whose Spearman correlation with the RMSD
says how well it orders the errors; a model no better than the (R+P)/2 midpoint raises a
:class:`BaselineWarning`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sciflow.errors import InputError, WorseThanBaselineWarning
from sciflow.outputs import dumps_json

from .data import TSInputError
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
from .sampling import UNCERTAINTY_MEANINGS, sample_many
from .scope import OutOfScopeWarning, charge_of

__all__ = ["Evaluation", "evaluate", "BaselineWarning", "SCORE_MEANINGS", "EV_TO_KCAL",
           "CHEMICAL_ACCURACY_KCAL", "ReactionScore",
           "EvaluationSummary", "pair_rmsd", "single_point", "score", "summarize"]


BaselineWarning = WorseThanBaselineWarning
"""Raised when the generated TSs are no closer to the references than the (R+P)/2 midpoint:
the core's :class:`sciflow.errors.WorseThanBaselineWarning` (the CLI prints it)."""


@dataclass(frozen=True)
class Evaluation:
    """Per-reaction scores, the summary, and the generation settings and timings (seconds per
    reaction: ``seconds_batched`` inside the one batch, ``seconds_single`` generated alone).

    ``scored`` says which reactions were scored (e.g. the held-out part of a split);
    ``uncertainty`` how each reaction's uncertainty was measured (``"spread"``, ``"reverse"``
    or ``"none"``); ``warnings`` the text of every :class:`BaselineWarning` raised;
    ``generated`` the chosen TS of each reaction (not in :meth:`to_dict`); ``skipped`` (id,
    reason) of the reactions the model refuses (outside its scope), which were not scored.
    """

    rows: tuple[ReactionScore, ...]
    summary: EvaluationSummary
    samples: int
    steps: int
    solver: str
    seconds_batched: float
    seconds_single: float | None
    scored: str = ""
    uncertainty: str = "none"
    warnings: tuple[str, ...] = ()
    generated: tuple[Any, ...] = field(default=(), repr=False)
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def method(self) -> str:
        """Former name of :attr:`solver`."""
        return self.solver

    def to_dict(self) -> dict[str, Any]:
        return {"summary": asdict(self.summary), "rows": [asdict(r) for r in self.rows],
                "samples": self.samples, "sample_steps": self.steps, "solver": self.solver,
                "seconds_batched": self.seconds_batched, "seconds_single": self.seconds_single,
                "scored": self.scored, "uncertainty": self.uncertainty,
                "uncertainty_meaning": UNCERTAINTY_MEANINGS.get(self.uncertainty, "not measured"),
                "warnings": list(self.warnings), "meaning": SCORE_MEANINGS,
                "skipped": [{"id": i, "reason": why} for i, why in self.skipped]}

    def to_json(self) -> str:
        """Strict JSON text of :meth:`to_dict` (no bare NaN or Infinity)."""
        return dumps_json(self.to_dict(), indent=1)


SCORE_MEANINGS = {
    "rmsd": "Kabsch RMSD (A, proper rotations only, not capped) of the generated TS to the "
            "reference TS; inf when the generation diverged",
    "rmsd_tsgen": "TS-GEN's variant (mirror images allowed, capped at 1 A), for comparison only",
    "rmsd_midpoint": "the same RMSD for the (R+P)/2 midpoint, the trivial baseline",
    "energy_generated": "GFN2-xTB single-point energy (eV) of the generated TS; null when not "
                        "computed or when the SCF failed",
    "energy_reference": "the same for the reference TS",
    "uncertainty": "the generation's per-reaction uncertainty (A), see uncertainty_meaning",
    "uncertainty_spearman": "Spearman rank correlation of uncertainty and RMSD over the scored "
                            "reactions (1: the uncertainty orders the errors perfectly)",
}


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def evaluate(model: Model, reactions: Sequence[Any], *, samples: int = 1,
             sample_steps: int | None = None, solver: str | None = None, seed: int = 0,
             calculator: CalculatorFactory | None = None, time_single: bool = True,
             uncertainty: str = "auto", scored: str = "", progress: bool = False,
             chunk: int = 32, steps: int | None = None, method: str | None = None) -> Evaluation:
    """Generate the TS of every reaction (batches of ``chunk``) and score it against the reference.

    With ``calculator`` the generated and reference TSs get single-point energies.
    ``uncertainty`` is passed to :func:`.sampling.sample_many` (``"auto"``: spread of K >= 2
    samples, else the R->P / P->R disagreement); its Spearman correlation with the RMSD is in
    the summary. When the median RMSD is no better than the (R+P)/2 midpoint's, a
    :class:`BaselineWarning` is raised (and kept in ``warnings``). ``progress`` reports through
    :func:`sciflow.progress.progress`. ``steps`` and ``method`` are the former names of
    ``sample_steps`` and ``solver``.
    """
    from sciflow.progress import progress as bar

    reactions = list(reactions)
    if not reactions:
        raise InputError("evaluate() got no reactions; pass reactions with reference TSs")
    reactions, skipped = _in_scope(model, reactions)
    sample_steps = steps if sample_steps is None else sample_steps
    solver = method if solver is None else solver
    sample_steps = model.default_steps if sample_steps is None else sample_steps
    solver = solver or model.default_solver
    pairs = [(r.reactant, r.product) for r in reactions]
    kw = dict(samples=samples, sample_steps=sample_steps, solver=solver, seed=seed,
              nonfinite="keep")
    work = len(reactions) * (2 if time_single else 1) + (len(reactions) if calculator else 0)
    results: list[Any] = []
    with bar(total=work, desc="ts evaluate", unit="reaction", enabled=progress) as pb:
        t0 = time.perf_counter()
        for part in _chunks(len(pairs), chunk):
            results += sample_many(model, [pairs[i] for i in part], uncertainty=uncertainty, **kw)
            pb.update(len(part))
        batched = (time.perf_counter() - t0) / len(reactions)
        single = None
        if time_single:
            t1 = time.perf_counter()
            for pair in pairs:
                sample_many(model, [pair], **kw)
                pb.update(1)
            single = (time.perf_counter() - t1) / len(reactions)
        rows = []
        for r, g in zip(reactions, results):
            rows.append(score(r, g.best, calculator=calculator, uncertainty=g.uncertainty))
            if calculator is not None:
                pb.update(1)
    summary = summarize(rows)
    said = []
    if skipped:
        said.append(f"{len(skipped)} reaction(s) outside the model's scope were not scored, "
                    f"e.g. {skipped[0][0]}: {skipped[0][1]}")
        warnings.warn(OutOfScopeWarning(said[-1]), stacklevel=2)
    if summary.rmsd_median >= summary.rmsd_midpoint_median:
        said.append(f"the generated TSs are no closer to the references than the (R+P)/2 "
                    f"midpoint on these {len(rows)} reactions (median RMSD "
                    f"{summary.rmsd_median:.3f} A vs {summary.rmsd_midpoint_median:.3f} A): "
                    "the model adds nothing here (reactions unlike its training data?)")
        warnings.warn(BaselineWarning(said[-1]), stacklevel=2)
    return Evaluation(rows=tuple(rows), summary=summary, samples=samples, steps=sample_steps,
                      solver=solver, seconds_batched=batched, seconds_single=single,
                      scored=scored, uncertainty=results[0].uncertainty_kind,
                      warnings=tuple(said), generated=tuple(g.best for g in results),
                      skipped=tuple(skipped))


def _in_scope(model: Model, reactions: list[Any]) -> tuple[list[Any], list[tuple[str, str]]]:
    """The reactions the model takes, and (id, reason) of those it refuses (element, kind,
    charge: :meth:`.model.Model.prepare`); all refused is an error."""
    kept, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfScopeWarning)
        for r in reactions:
            try:
                model.prepare(r.reactant, r.product, charge=charge_of(r.reactant)[0],
                              multiplicity=charge_of(r.reactant)[1])
            except TSInputError as err:
                skipped.append((str(r.id), str(err)))
                continue
            kept.append(r)
    if not kept:
        raise TSInputError(f"the model refuses all {len(reactions)} reactions, e.g. "
                           f"{skipped[0][0]}: {skipped[0][1]}")
    return kept, skipped

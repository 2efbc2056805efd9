"""How close a generated TS is to the reference: Kabsch RMSD and single-point energy errors.

- RMSD: Kabsch superposition with proper rotations only (no mirror images), not capped, in A.
  TS-GEN's variant (mirror images allowed, capped at 1 A) is kept beside it for comparison only.
- Energies: single points with an ASE calculator (GFN2-xTB in the CLI), in eV; |dE| summaries in
  kcal/mol, with the 1.58 kcal/mol chemical-accuracy threshold of TS-GEN and React-OT.

A generated TS with non-finite coordinates scores RMSD = inf (a miss in every fraction, never a
NaN that would drop out of a mean) and no energy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ase import Atoms

from sciflow.metrics import kabsch_rmsd

from .data import prepare_endpoints
from .ranking import CalculatorFactory

__all__ = ["EV_TO_KCAL", "CHEMICAL_ACCURACY_KCAL", "pair_rmsd", "single_point", "ReactionScore",
           "EvaluationSummary", "score", "summarize", "spearman"]

EV_TO_KCAL = 23.060547830619
CHEMICAL_ACCURACY_KCAL = 1.58  # 1.58 kcal/mol = 0.0685 eV, TS-GEN's and React-OT's threshold


def pair_rmsd(x: np.ndarray, y: np.ndarray) -> float:
    """Kabsch RMSD (proper rotations, A) between two (N, 3) geometries; inf if one is not finite."""
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return math.inf
    return float(kabsch_rmsd(torch.as_tensor(x), torch.as_tensor(y))[0])


def single_point(atoms: Atoms, calculator: CalculatorFactory) -> float:
    """Potential energy (eV); NaN when the calculation fails (an SCF on a distorted geometry)."""
    if not np.isfinite(atoms.get_positions()).all():
        return math.nan
    a = Atoms(numbers=atoms.numbers, positions=atoms.get_positions())
    a.calc = calculator()
    try:
        return float(a.get_potential_energy())
    except Exception:  # SCF failure on a distorted geometry: counted as an energy failure
        return math.nan


@dataclass(frozen=True)
class ReactionScore:
    """One test reaction: RMSDs (A, Kabsch, no mirrors, uncapped) and energies (eV) of the TS.

    ``rmsd_tsgen`` is TS-GEN's variant (mirror images allowed, capped at 1 A), for comparison only.
    Energies are NaN when not computed or when the calculator failed on the geometry.
    ``uncertainty`` is the generation's per-reaction uncertainty in A (NaN when not measured;
    :class:`~.sampling.GeneratedTS`), ``kind`` the reaction kind ('' read as bond_edit).
    """

    id: str
    family: str
    atoms: int
    rmsd: float
    rmsd_tsgen: float
    rmsd_midpoint: float
    energy_generated: float = math.nan
    energy_reference: float = math.nan
    uncertainty: float = math.nan
    kind: str = ""

    @property
    def energy_error(self) -> float:
        """Signed E(generated) - E(reference), eV."""
        return self.energy_generated - self.energy_reference


@dataclass(frozen=True)
class EvaluationSummary:
    """Aggregates over the reactions of an evaluation (RMSD in A, energies in kcal/mol).

    ``generation_failures`` counts reactions whose generated TS held NaN/inf (RMSD inf).
    ``uncertainty_spearman`` is Spearman's rank correlation between the per-reaction uncertainty
    and the RMSD (1: the uncertainty orders the errors perfectly; NaN without uncertainties or
    with fewer than 3 reactions).
    """

    reactions: int
    rmsd_mean: float
    rmsd_median: float
    rmsd_below_0_1: float
    rmsd_midpoint_median: float
    tsgen_rmsd_mean: float
    energies: int
    energy_failures: int
    abs_de_mean: float
    abs_de_median: float
    abs_de_below_1_58: float
    tsgen_signed_de_mean: float
    tsgen_signed_below_1_58: float
    generation_failures: int = 0
    uncertainty_spearman: float = math.nan


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two sequences (average ranks for ties; inf ranks last);
    NaN for fewer than 3 finite-or-inf pairs or a constant sequence."""
    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    big = lambda v: np.where(np.isinf(v), np.nanmax(np.where(np.isinf(v), -np.inf, v)) + 1, v)  # noqa: E731
    return float(spearmanr(big(x), big(y)).statistic)


def score(reaction: Any, generated: Atoms, *, calculator: CalculatorFactory | None = None,
          uncertainty: float | None = None) -> ReactionScore:
    """Score one generated TS against a reaction's reference TS (see :class:`ReactionScore`)."""
    ref = reaction.transition_state.get_positions()
    x = generated.get_positions()
    ep = prepare_endpoints(reaction.reactant, reaction.product,
                           elements=sorted(set(int(z) for z in reaction.numbers)), min_distance=0.0)
    mid = 0.5 * (ep.reactant + ep.product)  # the (R+P)/2 baseline; RMSD ignores the frame
    rmsd = pair_rmsd(x, ref)
    tsgen = min(1.0, rmsd, pair_rmsd(-x, ref))
    e_gen = e_ref = math.nan
    if calculator is not None:
        e_gen = single_point(generated, calculator)
        e_ref = single_point(reaction.transition_state, calculator)
    return ReactionScore(id=reaction.id, family=reaction.family, atoms=len(reaction.numbers),
                         rmsd=rmsd, rmsd_tsgen=tsgen, rmsd_midpoint=pair_rmsd(mid, ref),
                         energy_generated=e_gen, energy_reference=e_ref,
                         uncertainty=math.nan if uncertainty is None else float(uncertainty),
                         kind=getattr(reaction, "kind", "") or "")


def summarize(rows: Sequence[ReactionScore]) -> EvaluationSummary:
    """Mean / median / fractions over the rows (NaN energies are counted as failures)."""
    r = np.array([x.rmsd for x in rows])
    de = np.array([x.energy_error for x in rows]) * EV_TO_KCAL
    attempted = np.array([not math.isnan(x.energy_reference) for x in rows], dtype=bool)
    ok = attempted & np.isfinite(de)
    good = de[ok]
    nan = math.nan

    def stat(f: Callable[[np.ndarray], float], a: np.ndarray) -> float:
        return float(f(a)) if a.size else nan

    n_att = int(attempted.sum())
    return EvaluationSummary(
        reactions=len(rows), rmsd_mean=stat(np.mean, r), rmsd_median=stat(np.median, r),
        rmsd_below_0_1=stat(lambda a: np.mean(a < 0.1), r),
        rmsd_midpoint_median=stat(np.median, np.array([x.rmsd_midpoint for x in rows])),
        tsgen_rmsd_mean=stat(np.mean, np.array([x.rmsd_tsgen for x in rows])),
        energies=int(ok.sum()), energy_failures=n_att - int(ok.sum()),
        abs_de_mean=stat(np.mean, np.abs(good)), abs_de_median=stat(np.median, np.abs(good)),
        # failures count as misses in the fraction
        abs_de_below_1_58=float(np.sum(np.abs(good) < CHEMICAL_ACCURACY_KCAL) / n_att) if n_att else nan,
        tsgen_signed_de_mean=stat(np.mean, good),
        tsgen_signed_below_1_58=float(np.sum(good < CHEMICAL_ACCURACY_KCAL) / n_att) if n_att else nan,
        generation_failures=int(np.sum(~np.isfinite(r))),
        uncertainty_spearman=spearman([x.uncertainty for x in rows], r),
    )

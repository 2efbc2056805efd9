"""Sampling TSs: source draws pushed through the learned ODE (``sciflow.solvers``), then ranked.

For each reaction, ``samples`` draws x0 from the model's source (:mod:`.sources`) are integrated
from t = 0 to the TS at t = 1 with ``solver`` in ``sample_steps`` steps (the checkpoint's
validated defaults unless given), all reactions and samples in one ragged batch, and ranked best
first (:func:`.ranking.rank`). The result sits on the user's reactant: same centroid, the
orientation P was aligned to.

A sample that leaves the finite numbers (the network diverges, seen for molecules much larger than
the training data) is a :class:`~sciflow.errors.NonFiniteError` naming the reaction, the sample
and the solver step where it happened; nothing is returned or written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from torch import Tensor

from sciflow import graphs
from sciflow.errors import InputError, NonFiniteError
from sciflow.resources import check_memory
from sciflow.solvers import SOLVERS, Interval, odeint

from .data import Endpoints, stack_endpoints
from .metrics import pair_rmsd
from .model import Model, load
from .ranking import RANK_RULES, CalculatorFactory, RankRule
from .ranking import rank as rank_samples

__all__ = ["GeneratedTS", "sample", "sample_many", "integrate", "generate_ts", "UNCERTAINTIES",
           "UNCERTAINTY_MEANINGS"]


UNCERTAINTIES = ("auto", "spread", "reverse", "none")
"""How :func:`sample_many` measures each reaction's uncertainty (see :class:`GeneratedTS`)."""

UNCERTAINTY_MEANINGS = {
    "spread": "mean Kabsch RMSD (A) of the other samples to the chosen TS: how much the K "
              "draws disagree; larger = less certain",
    "reverse": "Kabsch RMSD (A) between the TS generated R->P and the TS generated P->R (the "
               "same saddle either way): larger = less certain",
}


@dataclass(frozen=True)
class GeneratedTS:
    """Generated TSs of one reaction, ranked (best first), in the user's reactant frame.

    ``scores`` are the rank scores of ``rule`` (lower is better; for ``"medoid"`` the mean Kabsch
    RMSD in A of a sample to the other samples, undefined for one sample and then 0; for
    ``"fmax"`` the largest atomic force in eV/A); ``seconds`` the generation time of this
    reaction's share of the batch; ``nfe`` the network evaluations of the solver.
    ``uncertainty`` (A, None when not measured) orders reactions by expected error, measured as
    ``uncertainty_kind`` says (:data:`UNCERTAINTY_MEANINGS`): ``"spread"`` of K >= 2 samples
    around the chosen one, or ``"reverse"``, the disagreement of the R->P and P->R generations.
    """

    best: Atoms
    samples: tuple[Atoms, ...]
    scores: tuple[float, ...]
    rule: str
    seconds: float
    nfe: int
    uncertainty: float | None = None
    uncertainty_kind: str = "none"

    @property
    def rank_score(self) -> float | None:
        """The chosen sample's rank score, None when one sample leaves nothing to rank."""
        return None if len(self.samples) < 2 else self.scores[0]


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name}={value!r}: expected an integer >= 1")
    return int(value)


def _settings(model: Model, samples: int, sample_steps: int | None,
              solver: str | None) -> tuple[int, int, str]:
    samples = _count("samples", samples)
    steps = model.default_steps if sample_steps is None else _count("sample_steps", sample_steps)
    solver = model.default_solver if solver is None else solver
    if solver not in SOLVERS:
        raise InputError(f"solver={solver!r}: choose from {sorted(SOLVERS)}")
    return samples, steps, solver


def _check_size(model: Model, endpoints: Sequence[Endpoints], samples: int) -> None:
    """Refuse a request whose fully connected graphs would not fit in memory (edges x features)."""
    edges = samples * sum(len(ep.numbers) ** 2 for ep in endpoints)
    per_edge = 4 * (3 * model.config.num_rbf + 8 * model.config.hidden)
    check_memory(2 * edges * per_edge, f"{samples} sample(s) of {len(endpoints)} reaction(s) "
                 f"({edges} atom pairs)", name="--samples")


class _FirstNonFinite:
    """Solver hook: the first step after which each graph held NaN/inf (-1: never), kept on the
    device without a host synchronisation per step."""

    def __init__(self, batch: Tensor) -> None:
        self.batch = batch
        self.first = torch.full((graphs.num_graphs(batch, batch.numel()),), -1, dtype=torch.long,
                                device=batch.device)

    def __call__(self, x: Tensor, step: Interval) -> Tensor:
        bad = graphs.graph_sum((~torch.isfinite(x)).any(dim=-1).to(x.dtype), self.batch,
                               self.first.numel()) > 0
        self.first = torch.where((self.first < 0) & bad, step.index, self.first)
        return x


@torch.no_grad()
def integrate(model: Model, endpoints: Sequence[Endpoints], *, samples: int = 1,
              sample_steps: int | None = None, solver: str | None = None, seed: int = 0,
              nonfinite: str = "raise") -> tuple[list[np.ndarray], int]:
    """Raw samples in the model frame: per reaction an array (samples, N, 3), and the NFE.

    ``nonfinite="raise"`` raises NonFiniteError for a sample holding NaN/inf (naming reaction,
    sample and solver step); ``"keep"`` returns it as it is (for :func:`.evaluation.evaluate`).
    """
    samples, steps, solver = _settings(model, samples, sample_steps, solver)
    if nonfinite not in ("raise", "keep"):
        raise InputError(f"nonfinite={nonfinite!r}: choose 'raise' or 'keep'")
    if not endpoints:
        return [], 0
    _check_size(model, endpoints, samples)
    dtype = next(model.net.parameters()).dtype
    cond, ids = stack_endpoints(endpoints, elements=model.elements, repeats=samples, dtype=dtype)
    x0 = model.source.sample(cond.reactant, cond=cond, batch=ids,
                             generator=torch.Generator().manual_seed(seed))
    device = model.device
    cond, ids, x0 = cond.to(device), ids.to(device), x0.to(device)
    watch = _FirstNonFinite(ids)
    sol = odeint(model.velocity, x0, method=solver, steps=steps, cond=cond, batch=ids,
                 hooks=[watch])
    x = sol.x.double().cpu().numpy()
    out, start = [], 0
    for ep in endpoints:
        n = len(ep.numbers)
        out.append(x[start:start + n * samples].reshape(samples, n, 3))
        start += n * samples
    if nonfinite == "raise":
        trained = model.meta.get("train", {}).get("max_atoms")
        _raise_if_nonfinite(out, watch.first.cpu().tolist(), samples, solver, len(sol.times) - 1,
                            trained)
    return out, sol.nfe


def _raise_if_nonfinite(blocks: list[np.ndarray], first: list[int], samples: int, solver: str,
                        taken: int, trained_atoms: int | None) -> None:
    bad = [(r, s) for r, block in enumerate(blocks) for s in range(samples)
           if not np.isfinite(block[s]).all()]
    if not bad:
        return
    r, s = bad[0]
    step = first[r * samples + s]
    where = (f"after solver step {step + 1} of {taken} ({solver})" if step >= 0
             else f"({solver}, {taken} steps)")
    n_atoms = blocks[r].shape[1]
    seen = (f" (this model was trained on reactions of up to {trained_atoms} atoms)"
            if trained_atoms else "")
    raise NonFiniteError(
        f"the generated TS of reaction {r} ({n_atoms} atoms), sample {s}, holds NaN or inf "
        f"{where}; {len(bad)} of {len(blocks) * samples} sample(s) diverged and nothing was "
        f"written. The network diverges on molecules unlike its training data{seen}: try "
        "--sample-steps 1 or 2 (a rougher TS that often stays finite where longer paths "
        "diverge), or a model trained on larger molecules (sciflow ts train)")


def _uncertainty_kind(uncertainty: str, samples: int) -> str:
    if uncertainty not in UNCERTAINTIES:
        raise InputError(f"uncertainty={uncertainty!r}: choose from {list(UNCERTAINTIES)}")
    if uncertainty == "auto":
        return "spread" if samples >= 2 else "reverse"
    if uncertainty == "spread" and samples < 2:
        raise InputError("uncertainty='spread' needs samples >= 2 (the spread of one sample is "
                         "undefined); use 'reverse' or more samples")
    return uncertainty


def sample_many(model: Model, pairs: Sequence[tuple[Atoms, Atoms]], *, samples: int = 1,
                sample_steps: int | None = None, solver: str | None = None, seed: int = 0,
                rank: RankRule = "medoid", calculator: CalculatorFactory | None = None,
                nonfinite: str = "raise", uncertainty: str = "none", charge: int = 0,
                multiplicity: int = 1) -> list[GeneratedTS]:
    """Generate TSs for many (reactant, product) pairs in one batch; see :func:`sample`."""
    samples, steps, solver = _settings(model, samples, sample_steps, solver)
    if rank not in RANK_RULES:
        raise InputError(f"rank={rank!r}: choose from {list(RANK_RULES)}")
    if rank == "fmax" and calculator is None:
        raise InputError("rank='fmax' needs a calculator factory, e.g. "
                         "sciflow.datasets.reactions.GFN2()")
    kind = _uncertainty_kind(uncertainty, samples)
    kw = dict(charge=charge, multiplicity=multiplicity)
    endpoints = [model.prepare(r, p, **kw) for r, p in pairs]
    t0 = time.perf_counter()
    raw, nfe = integrate(model, endpoints, samples=samples, sample_steps=steps, solver=solver,
                         seed=seed, nonfinite=nonfinite)
    back: list[np.ndarray | None] = [None] * len(endpoints)
    if kind == "reverse":
        reverse = [model.prepare(p, r, **kw) for r, p in pairs]
        back, more = integrate(model, reverse, samples=samples, sample_steps=steps,
                               solver=solver, seed=seed, nonfinite=nonfinite)
        nfe += more
    share = (time.perf_counter() - t0) / max(len(endpoints), 1)
    out = []
    for ep, block, rev in zip(endpoints, raw, back):
        atoms = [Atoms(numbers=ep.numbers, positions=x + ep.origin) for x in block]
        order, scores = rank_samples(atoms, rule=rank, calculator=calculator)
        ranked = tuple(atoms[k] for k in order)
        u = None
        if kind == "spread":
            best = block[order[0]]
            u = float(np.mean([pair_rmsd(block[k], best) for k in order[1:]]))
        elif kind == "reverse":
            u = pair_rmsd(block[order[0]], _consensus(rev))
        out.append(GeneratedTS(best=ranked[0], samples=ranked,
                               scores=tuple(float(scores[k]) for k in order), rule=rank,
                               seconds=share, nfe=nfe, uncertainty=u, uncertainty_kind=kind))
    return out


def _consensus(block: np.ndarray) -> np.ndarray:
    """The medoid of samples (K, N, 3) (the sample itself for K = 1)."""
    from .ranking import _medoid_scores

    return block[int(np.argmin(_medoid_scores(block)))]


def sample(model: Model, reactant: Atoms, product: Atoms, *, samples: int = 1,
           sample_steps: int | None = None, solver: str | None = None, seed: int = 0,
           rank: RankRule = "medoid", calculator: CalculatorFactory | None = None,
           uncertainty: str = "none", charge: int = 0, multiplicity: int = 1) -> GeneratedTS:
    """Generate the TS of one reaction from its reactant and product (one atom order).

    samples: draws to rank (``rank``: "medoid", no calculator, or "fmax" with ``calculator``);
    sample_steps / solver: the ODE solver (default: the checkpoint's validated ones); seed: the
    source draws; uncertainty: "none", "spread" (of K >= 2 samples around the chosen one),
    "reverse" (R->P against P->R generation, twice the work) or "auto" (spread for K >= 2, else
    reverse); charge / multiplicity: what R and P are (a model trained on neutral singlets
    refuses anything else, :func:`.scope.check_scope`). Returns the ranked samples in the
    reactant's frame. Raises TSInputError for R/P the model cannot take, InputError for bad
    settings, ResourceError for requests larger than memory and NonFiniteError when a sample
    diverges.

    Example
    -------
    >>> from ase.io import read                                              # doctest: +SKIP
    >>> ts = sample(load(), read("r.xyz"), read("p.xyz"), samples=4).best     # doctest: +SKIP
    """
    return sample_many(model, [(reactant, product)], samples=samples, sample_steps=sample_steps,
                       solver=solver, seed=seed, rank=rank, calculator=calculator,
                       uncertainty=uncertainty, charge=charge, multiplicity=multiplicity)[0]


def generate_ts(reactant: Atoms, product: Atoms, *, samples: int = 1, steps: int | None = None,
                refine_with: CalculatorFactory | None = None, checkpoint: str | Path | None = None,
                seed: int = 0) -> Atoms:
    """Former one-call helper: :func:`sample` with the shipped model (or ``checkpoint``), then
    optionally a Sella refinement with ``refine_with`` (:func:`.refinement.refine`)."""
    best = sample(load(checkpoint), reactant, product, samples=samples, sample_steps=steps,
                  seed=seed).best
    if refine_with is None:
        return best
    from .refinement import refine

    return refine(best, reactant=reactant, product=product, calculator=refine_with,
                  compare_idpp=False).atoms

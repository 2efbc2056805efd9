"""Ranking several generated TSs of one reaction, best first, by a documented rule.

* ``"medoid"`` (default, no calculator): the sample with the smallest mean Kabsch RMSD to the other
  samples of its reaction first -- the consensus geometry, robust to a stray sample (the
  median-of-samples practice of GoFlow);
* ``"fmax"`` (needs a calculator): the smallest largest atomic force first, since a saddle point
  is stationary.

A sample with non-finite coordinates scores inf under either rule (ranked last, never the medoid
of the others).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from ase import Atoms

from sciflow.errors import InputError
from sciflow.metrics import kabsch_rmsd

__all__ = ["RANK_RULES", "RankRule", "CalculatorFactory", "rank"]

RANK_RULES = ("medoid", "fmax")
RankRule = Literal["medoid", "fmax"]
CalculatorFactory = Callable[[], Any]
"""A zero-argument factory of ASE calculators, e.g. ``sciflow.datasets.reactions.GFN2()``."""


def _max_force(atoms: Atoms, calculator: CalculatorFactory) -> float:
    a = atoms.copy()
    a.calc = calculator()
    try:
        return float(np.linalg.norm(a.get_forces(), axis=1).max())
    except Exception:  # an SCF that fails on a distorted sample ranks that sample last
        return math.inf


def _medoid_scores(pos: np.ndarray) -> np.ndarray:
    """score_k = mean_{l != k} RMSD(x_k, x_l) over the finite samples; inf for the others."""
    n = len(pos)
    finite = np.isfinite(pos.reshape(n, -1)).all(axis=1)
    scores = np.full(n, math.inf)
    keep = np.flatnonzero(finite)
    if len(keep) == 1:
        scores[keep] = 0.0
    elif len(keep) > 1:
        x = torch.as_tensor(pos[keep])
        k, m = x.shape[:2]
        i, j = torch.triu_indices(k, k, 1)
        batch = torch.arange(i.numel()).repeat_interleave(m)
        d = kabsch_rmsd(x[i].reshape(-1, 3), x[j].reshape(-1, 3), batch).numpy()
        full = np.zeros((k, k))
        full[i.numpy(), j.numpy()] = d
        scores[keep] = (full + full.T).sum(1) / (k - 1)
    return scores


def rank(samples: Sequence[Atoms], *, rule: RankRule = "medoid",
         calculator: CalculatorFactory | None = None) -> tuple[list[int], np.ndarray]:
    """Order samples of one reaction best first; returns (order, score per sample).

    medoid: score_k = mean_{l != k} RMSD(x_k, x_l) (Kabsch, no mirrors), 0 for one sample;
    fmax: score_k = max_i |F_i(x_k)| with ``calculator`` (inf when the calculation fails).
    Ties keep the sampling order.
    """
    n = len(samples)
    if n == 0:
        raise InputError("rank() needs at least one sample")
    if rule == "medoid":
        scores = _medoid_scores(np.stack([s.get_positions() for s in samples]))
    elif rule == "fmax":
        if calculator is None:
            raise InputError("rank(rule='fmax') needs a calculator factory, e.g. "
                             "sciflow.datasets.reactions.GFN2()")
        scores = np.array([_max_force(s, calculator) if np.isfinite(s.get_positions()).all()
                           else math.inf for s in samples])
    else:
        raise InputError(f"rule must be 'medoid' or 'fmax', got {rule!r}")
    return sorted(range(n), key=lambda k: (scores[k], k)), scores

"""Provenance of a prediction: what made it, stored where AnnData users look (``uns['sciflow']``).

:func:`run_provenance` describes a sampling run (sciflow version, the model and the digest of its
checkpoint, seed, solver, steps, tolerances, what a predicted cell is and what the spread means);
:func:`h5ad_safe` turns it into something ``write_h5ad`` stores (no None, lists not tuples).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sciflow

from .model import KIND, Model

__all__ = ["PREDICTION", "SPREAD", "run_provenance", "h5ad_safe"]

#: what a predicted cell is (``uns['sciflow']['prediction']``)
PREDICTION = ("each predicted cell is its source cell (obs['source_cell']) pushed through the "
              "learned flow dx/dt = v(x, t | population, treatment) from t = 0 (source) to t = 1 "
              "(treated); its obs are the source cell's, with the treatment and role set")
#: what the spread is (``uns['sciflow']['spread']``)
SPREAD = ("std of a population's predicted mean over bootstrap redraws of its source cells "
          "(root mean square over features, the units of mean-L2): the uncertainty a finite "
          "source sample leaves, not the model's own error")


def run_provenance(model: Model, *, solver: str, steps: int, atol: float, rtol: float,
                   seed: int, spread_repeats: int = 0) -> dict[str, Any]:
    """A JSON-able description of one sampling run of ``model`` (module docstring)."""
    ck = model.checkpoint or {}
    trained = model.result.step if model.result is not None else ck.get("step")
    out: dict[str, Any] = {
        "sciflow_version": sciflow.__version__,
        "kind": KIND,
        "model_type": model.config.model_type,
        "checkpoint": ck.get("path", "(in memory, not saved)"),
        "checkpoint_digest": ck.get("digest") or "(none: not saved, or a file without one)",
        "training_steps": trained,
        "trained_conditions": list(model.config.conditions),
        "trained_features": len(model.features),
        "solver": solver,
        "sample_steps": steps if solver != "dopri5" else f"adaptive (atol {atol}, rtol {rtol})",
        "atol": atol,
        "rtol": rtol,
        "seed": seed,
        "seed_means": ("seeds the subsample of source cells MFM embeds"
                       + (" and the spread's redraws" if spread_repeats else "")),
        "embed_cells": model.embed_cells,
        "prediction": PREDICTION,
    }
    if spread_repeats:
        out["spread_repeats"] = spread_repeats
        out["spread"] = SPREAD
    return out


def h5ad_safe(obj: Any) -> Any:
    """``obj`` with None dropped from mappings (and as "" in lists), tuples as lists, paths as
    strings: what ``anndata.write_h5ad`` can store in ``uns``."""
    if isinstance(obj, Mapping):
        return {str(k): h5ad_safe(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return ["" if v is None else h5ad_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj

"""Predicted populations as AnnData, and back: what ``sciflow cells predict`` writes.

:func:`predictions_to_anndata` writes one row per predicted cell, laid out as scanpy users expect:

- ``obs``: every column of the source cell it was predicted from, with the population column
  kept, the condition column set to the treatment, the role column (the input's, or ``role``) set
  to ``"predicted"`` and ``source_cell`` naming the source cell; the cell names are
  ``<source cell>-pred-<treatment>`` (``<source cell>-pred`` without a condition column), unique;
- the representation in ``obsm`` under the input's key (``obsm["X_pca"]``);
- ``X`` and ``var`` in the input's gene space when the input can be mapped back
  (:class:`~.origin.GeneMap`: ``varm["PCs"]`` of scanpy's PCA; ``varm`` and ``uns["pca"]`` are
  copied along), or the features themselves when they were read from ``X``; so
  ``anndata.concat([real, predicted])`` keeps the genes. Without loadings ``X`` holds the
  representation and ``uns['sciflow']['X']`` says so;
- ``uns['sciflow']``: the provenance (:func:`~.provenance.run_provenance`), what ``X`` holds,
  the obs columns used and a per-population table (cells, spread, separation).

:func:`predict_anndata` samples, measures the spread and writes all of it in one call;
:func:`read_predictions` groups a written file by :attr:`~.populations.PopulationPair.key` for
scoring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from .columns import PREDICTED, groups, labels
from .config import ATOL, RTOL, SAMPLE_STEPS, SOLVER, SPREAD_REPEATS
from .data import feature_matrix, read_h5ad
from .model import Model
from .populations import CellDataError, CellPopulations, PopulationPair
from .provenance import h5ad_safe, run_provenance
from .sampling import sample
from .spread import PopulationSpread, population_spread

if TYPE_CHECKING:
    import anndata
    import pandas as pd

__all__ = ["SOURCE_CELL", "predictions_to_anndata", "predict_anndata", "read_predictions",
           "prediction_names"]

#: the obs column of a predicted cell that names its source cell
SOURCE_CELL = "source_cell"


def prediction_names(pair: PopulationPair, n: int) -> list[str]:
    """The ``obs_names`` of the n cells predicted for ``pair``: ``<source>-pred-<treatment>``."""
    sources = list(pair.source_names) if pair.source_names is not None and \
        len(pair.source_names) == n else [f"{pair.population}[{i}]" for i in range(n)]
    tail = "-pred" if pair.condition is None else f"-pred-{pair.condition}"
    return [s + tail for s in sources]


def _obs_block(cells: CellPopulations, pair: PopulationPair, n: int, role: str) -> pd.DataFrame:
    import pandas as pd

    keys, origin = cells.keys, cells.origin
    names = list(pair.source_names) if pair.source_names is not None else None
    if origin is not None and names is not None and len(names) == n:
        frame = origin.obs.loc[names].copy()
    else:
        frame = pd.DataFrame(index=[f"{pair.population}[{i}]" for i in range(n)])
    frame[SOURCE_CELL] = frame.index.astype(str)
    frame[keys.get("population") or "population"] = pair.population
    frame[keys.get("role") or "role"] = role
    if keys.get("condition"):
        frame[keys["condition"]] = pair.condition
    frame.index = prediction_names(pair, n)
    return frame


def predictions_to_anndata(
    cells: CellPopulations,
    predictions: Sequence[Tensor | np.ndarray],
    *,
    role: str = PREDICTED,
    method: str = "",
    provenance: Mapping[str, Any] | None = None,
    spread: Sequence[PopulationSpread] | None = None,
) -> anndata.AnnData:
    """Predicted target cells as AnnData, one block of rows per pair of ``cells`` (module
    docstring for the layout).

    predictions: one (n_i, D) array per pair, row j predicted from the pair's source cell j.
    role: the role value of the predicted cells. method: the model type, kept in
    ``uns['sciflow']`` when no ``provenance`` is given. provenance: what made the predictions
    (:func:`~.provenance.run_provenance`). spread: one :class:`~.spread.PopulationSpread` per
    pair, for the per-population table.
    """
    import anndata
    import pandas as pd

    if len(predictions) != len(cells.pairs):
        raise ValueError(f"got {len(predictions)} predictions for {len(cells.pairs)} pairs")
    if spread is not None and len(spread) != len(cells.pairs):
        raise ValueError(f"got {len(spread)} spreads for {len(cells.pairs)} pairs")
    blocks, frames = [], []
    for pair, pred in zip(cells.pairs, predictions):
        arr = pred.detach().cpu().numpy() if isinstance(pred, Tensor) else np.asarray(pred)
        if arr.ndim != 2 or arr.shape[1] != cells.dim:
            raise ValueError(f"prediction for {pair.key!r} has shape {arr.shape}; expected "
                             f"(n, {cells.dim})")
        blocks.append(arr.astype(np.float32))
        frames.append(_obs_block(cells, pair, arr.shape[0], role))
    obs = pd.concat(frames)
    for col in obs.columns:
        if col != SOURCE_CELL and (obs[col].dtype == object or isinstance(
                obs[col].dtype, pd.CategoricalDtype)):
            obs[col] = obs[col].astype("category")
    if not obs.index.is_unique:
        obs.index = anndata.utils.make_index_unique(obs.index)
    z = np.concatenate(blocks, axis=0)
    origin = cells.origin
    genes = origin.genes if origin is not None else None
    if genes is not None:
        out = anndata.AnnData(X=genes.genes(z), obs=obs, var=genes.var.copy())
        out.varm[genes.varm_key] = genes.loadings.astype(np.float32)
        what = genes.describe(cells.rep)
    elif cells.rep == "X":
        var = origin.var.copy() if origin is not None and origin.var is not None and \
            len(origin.var) == cells.dim else pd.DataFrame(index=list(cells.features))
        out = anndata.AnnData(X=z, obs=obs, var=var)
        what = "the predicted features, in the input's X space and var"
    else:
        out = anndata.AnnData(X=z.copy(), obs=obs)
        out.var_names = list(cells.features)
        what = (f"obsm['{cells.rep}'] again: the input had no varm loadings of {cells.rep!r} "
                "to map it back to genes")
    if cells.rep != "X":
        out.obsm[cells.rep] = z
    if origin is not None and origin.uns_pca is not None:
        out.uns["pca" if cells.rep == "X_pca" else cells.rep] = origin.uns_pca
    table: dict[str, Any] = {
        "population": [p.population for p in cells.pairs],
        "condition": ["" if p.condition is None else p.condition for p in cells.pairs],
        "cells": [int(b.shape[0]) for b in blocks]}
    if spread is not None:
        table.update({k: [float(getattr(s, k)) for s in spread] for k in ("spread", "separation")})
    info = dict(provenance) if provenance is not None else {"model_type": method}
    info.update({"role": role, "rep": cells.rep, "X": what, "populations": table,
                 "obs": {**{k: v for k, v in cells.keys.items() if k != "pool"},
                         "population": cells.keys.get("population") or "population",
                         "role": cells.keys.get("role") or "role",
                         "pool": bool(cells.keys.get("pool", False)), "source_cell": SOURCE_CELL}})
    out.uns["sciflow"] = h5ad_safe(info)
    return out


def predict_anndata(
    model: Model,
    cells: CellPopulations,
    *,
    solver: str = SOLVER,
    steps: int = SAMPLE_STEPS,
    atol: float = ATOL,
    rtol: float = RTOL,
    seed: int = 0,
    spread_repeats: int = SPREAD_REPEATS,
    device: str | None = None,
    progress: bool | None = False,
) -> tuple[anndata.AnnData, list[Tensor]]:
    """Sample every pair of ``cells`` with ``model``, measure each population's spread over
    ``spread_repeats`` bootstrap redraws (0: none; :mod:`.spread`) and lay it all out as AnnData
    with its provenance. Returns the AnnData and the predictions (one (n_i, D) tensor per pair).
    """
    preds = sample(model, cells, solver=solver, steps=steps, atol=atol, rtol=rtol, seed=seed,
                   device=device, progress=progress)
    spread = None
    if spread_repeats:
        spread = population_spread(model, cells, predictions=preds, repeats=spread_repeats,
                                   seed=seed, solver=solver, steps=steps, atol=atol, rtol=rtol,
                                   device=device, progress=progress)
    info = run_provenance(model, solver=solver, steps=steps, atol=atol, rtol=rtol, seed=seed,
                          spread_repeats=spread_repeats)
    return predictions_to_anndata(cells, preds, provenance=info, spread=spread), preds


def read_predictions(
    adata: anndata.AnnData | str | Path,
    *,
    population_key: str | None = None,
    role_key: str | None = None,
    condition_key: str | None = None,
    role: str = PREDICTED,
    rep: str | None = None,
) -> dict[str, Tensor]:
    """Predicted cells grouped by :attr:`PopulationPair.key` (``population`` or
    ``population|condition``), as written by :func:`predictions_to_anndata`.

    The obs columns and ``rep`` default to those ``uns['sciflow']`` records (``rep`` else ``"X"``).
    """
    if isinstance(adata, (str, Path)):
        adata = read_h5ad(adata)
    info = adata.uns.get("sciflow", {})
    written = dict(info.get("obs", {})) if isinstance(info, Mapping) else {}
    population_key = population_key or written.get("population")
    role_key = role_key or written.get("role") or "role"
    if condition_key is None and written.get("condition"):
        condition_key = str(written["condition"])
    if population_key is None:
        raise CellDataError("population_key is needed: this file does not record its population "
                            "column in uns['sciflow']")
    rep = rep or str(info.get("rep", "X") if isinstance(info, Mapping) else "X")
    x, _ = feature_matrix(adata, rep)
    pops = labels(adata, population_key, "population_key")
    rows = np.nonzero(labels(adata, role_key, "role_key") == role)[0]
    if rows.size == 0:
        raise CellDataError(f"no cell has {role_key}={role!r} in the predictions")
    keys = [pops] if condition_key is None else [pops, labels(adata, condition_key,
                                                              "condition_key")]
    out = {}
    for k, idx in groups(keys, rows).items():
        name = k[0] if condition_key is None or k[1] is None else f"{k[0]}|{k[1]}"
        out[name] = torch.from_numpy(np.array(x[idx]))
    return out

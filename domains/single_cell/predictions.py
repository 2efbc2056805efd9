"""Predicted populations as AnnData, and back: what ``sciflow cells predict`` writes.

:func:`predictions_to_anndata` lays the predicted cells out with the input's ``obs`` column names
(population, role = ``"predicted"``, condition) and features (``X``, and the ``obsm`` key they
were read from), so the file reads back with the same keys; :func:`read_predictions` groups them
by :attr:`~.populations.PopulationPair.key` for scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .data import _groups, _labels, feature_matrix, read_h5ad
from .populations import CellDataError, CellPopulations

if TYPE_CHECKING:
    import anndata

__all__ = ["predictions_to_anndata", "read_predictions"]


def predictions_to_anndata(
    cells: CellPopulations,
    predictions: Sequence[Tensor | np.ndarray],
    *,
    role: str = "predicted",
    method: str = "",
) -> anndata.AnnData:
    """Predicted target cells as AnnData, one block of rows per pair of ``cells``.

    ``X`` holds the predicted features (``var_names`` = the feature names); when the features came
    from an ``obsm`` key they are copied there too, so the file reads back with the same ``rep``.
    ``obs`` uses the input's column names: population, role (= ``role``) and condition.
    """
    import anndata
    import pandas as pd

    if len(predictions) != len(cells.pairs):
        raise ValueError(f"got {len(predictions)} predictions for {len(cells.pairs)} pairs")
    keys = cells.keys
    blocks, frames = [], []
    for pair, pred in zip(cells.pairs, predictions):
        arr = pred.detach().cpu().numpy() if isinstance(pred, Tensor) else np.asarray(pred)
        if arr.ndim != 2 or arr.shape[1] != cells.dim:
            raise ValueError(f"prediction for {pair.key!r} has shape {arr.shape}; expected "
                             f"(n, {cells.dim})")
        blocks.append(arr.astype(np.float32))
        frame = {keys["population"]: pair.population, keys["role"]: role}
        if keys.get("condition"):
            frame[keys["condition"]] = pair.condition
        frames.append(pd.DataFrame(frame, index=range(arr.shape[0])))
    obs = pd.concat(frames, ignore_index=True)
    for col in obs.columns:
        obs[col] = obs[col].astype("category")
    obs.index = obs.index.astype(str)
    x = np.concatenate(blocks, axis=0)
    out = anndata.AnnData(X=x, obs=obs)
    out.var_names = list(cells.features)
    if cells.rep != "X":
        out.obsm[cells.rep] = x.copy()
    out.uns["sciflow"] = {"method": method, "rep": cells.rep}
    return out


def read_predictions(
    adata: anndata.AnnData | str | Path,
    *,
    population_key: str,
    role_key: str = "role",
    condition_key: str | None = None,
    role: str = "predicted",
    rep: str = "X",
) -> dict[str, Tensor]:
    """Predicted cells grouped by :attr:`PopulationPair.key` (``population`` or
    ``population|condition``), as written by :func:`predictions_to_anndata`."""
    if isinstance(adata, (str, Path)):
        adata = read_h5ad(adata)
    x, _ = feature_matrix(adata, rep)
    pops = _labels(adata, population_key, "population_key")
    roles = _labels(adata, role_key, "role_key")
    rows = np.nonzero(roles == role)[0]
    if rows.size == 0:
        raise CellDataError(f"no cell has {role_key}={role!r} in the predictions")
    keys = [pops] if condition_key is None else [pops, _labels(adata, condition_key,
                                                               "condition_key")]
    out = {}
    for k, idx in _groups(keys, rows).items():
        name = k[0] if condition_key is None or k[1] is None else f"{k[0]}|{k[1]}"
        out[name] = torch.from_numpy(np.array(x[idx]))
    return out

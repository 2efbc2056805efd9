"""Reading ``obs`` columns: labels, groups, and which cells are sources and which are targets.

Two layouts name the source (untreated) and target (treated) cells:

- **a condition column with a control level** (scanpy / pertpy habit): ``condition_key`` holds
  every cell's condition, e.g. ``condition = control / IFNb / LPS``, and ``control`` names the
  untreated level. Cells at ``control`` are the sources; every other level is a treatment, and
  its cells are that treatment's targets. No role column is needed. Cells without a condition
  are refused (:class:`~.populations.CellDataError`), and rows whose ``role_key`` column (if
  any) reads ``"predicted"`` (what ``sciflow cells predict`` writes) are skipped, so real and
  predicted cells can share one file.
- **a role column**: ``role_key`` says ``source_role`` or ``target_role`` (rows with other values
  are skipped); ``condition_key`` (optional) then holds each target cell's treatment.

One flow is learned per (population, treatment) pair. **Pooling** several treatments into one
target is never silent: ``pool=True`` labels every target cell :data:`POOLED` (or, without a
condition column, keeps them as one target), and without it :func:`check_not_pooled` refuses
role-column data whose target cells split into several levels of some column that every source
cell shares (``treatment = control`` for sources, ``stim`` / ``inhib`` for targets) and names
that column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sciflow.errors import InputError

from .populations import CellDataError

if TYPE_CHECKING:
    import anndata

__all__ = ["SOURCE", "TARGET", "PREDICTED", "POOLED", "labels", "column", "groups",
           "cell_roles", "target_conditions", "check_not_pooled"]

#: the internal role labels of source and target cells (whatever the user's values are)
SOURCE, TARGET = "source", "target"
#: the role ``sciflow cells predict`` writes for its cells
PREDICTED = "predicted"
#: the condition of target cells when several treatments are pooled on purpose (``pool=True``)
POOLED = "pooled"
#: a column with more levels among the target cells than this is not read as treatments
_MAX_LEVELS = 64


def column(adata: anndata.AnnData, key: str, what: str) -> Any:
    """``adata.obs[key]`` (a pandas Series), or a CellDataError naming ``what`` and the columns."""
    if key not in adata.obs.columns:
        raise CellDataError(f"{what}={key!r} is not an obs column; available columns: "
                            f"{list(adata.obs.columns)}")
    return adata.obs[key]


def labels(adata: anndata.AnnData, key: str, what: str) -> np.ndarray:
    """An obs column as an object array of strings, missing values as None (vectorised)."""
    col = column(adata, key, what)
    out = col.astype(str).to_numpy(dtype=object)
    out[col.isna().to_numpy()] = None
    return out


def groups(keys: list[np.ndarray], rows: np.ndarray) -> dict[tuple[Any, ...], np.ndarray]:
    """Row indices (ascending) of each distinct key tuple among ``rows``, in order of first
    appearance."""
    import pandas as pd

    if rows.size == 0:
        return {}
    frame = pd.DataFrame({i: k[rows] for i, k in enumerate(keys)})
    codes = [pd.factorize(frame[c], use_na_sentinel=False)[0] for c in frame.columns]
    combined = np.zeros(rows.size, dtype=np.int64)
    for c in codes:
        combined = combined * (int(c.max()) + 1) + c
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    split = np.split(rows[order], np.cumsum(np.bincount(inverse))[:-1])
    out = {}
    for g in np.argsort(first, kind="stable"):
        out[tuple(k[rows[first[g]]] for k in keys)] = split[g]
    return out


def _levels(values: np.ndarray) -> list[str]:
    return sorted({v for v in values.tolist() if v is not None})


def cell_roles(adata: anndata.AnnData, *, role_key: str | None, condition_key: str | None,
               control: str | None, source_role: str, target_role: str) -> np.ndarray:
    """Each cell's role, :data:`SOURCE`, :data:`TARGET` or None (skipped), from either layout.

    With ``control``: from ``obs[condition_key]`` (the module docstring); otherwise from
    ``obs[role_key]`` (values ``source_role`` / ``target_role``).
    """
    out = np.full(adata.n_obs, None, dtype=object)
    if control is not None:
        if condition_key is None:
            raise InputError(f"control={control!r} needs condition_key, the obs column in which "
                             f"{control!r} marks the untreated cells (e.g. --condition-key "
                             f"condition --control {control})")
        conds = labels(adata, condition_key, "condition_key")
        skipped = np.zeros(adata.n_obs, dtype=bool)
        if role_key is not None and role_key in adata.obs.columns:
            skipped = labels(adata, role_key, "role_key") == PREDICTED
        kept = conds[~skipped]
        missing = int(sum(c is None for c in kept.tolist()))
        if missing:
            raise CellDataError(f"{missing} cell(s) have no value in obs[{condition_key!r}]; "
                                "every cell needs its condition (the control level or a "
                                "treatment): fill the column or drop them (--where)")
        if control not in _levels(kept):
            raise CellDataError(f"control={control!r} is not a value of obs[{condition_key!r}]; "
                                f"its values are {_levels(kept)[:10]}: pass the untreated level "
                                "as control (--control)")
        out[~skipped & (conds == control)] = SOURCE
        out[~skipped & (conds != control)] = TARGET
        return out
    if role_key is None or role_key not in adata.obs.columns:
        raise CellDataError(
            f"role_key={role_key!r} is not an obs column; available columns: "
            f"{list(adata.obs.columns)}. If one column holds each cell's condition with an "
            "untreated level (condition = control / IFNb / LPS), pass condition_key=<that "
            "column> and control=<that level> (--condition-key, --control) instead of a role "
            "column")
    roles = labels(adata, role_key, "role_key")
    out[roles == source_role] = SOURCE
    out[roles == target_role] = TARGET
    return out


def target_conditions(adata: anndata.AnnData, roles: np.ndarray, *, condition_key: str | None,
                      pool: bool) -> np.ndarray | None:
    """Each cell's treatment label (what a target cell becomes), or None without a column.

    ``pool`` labels every target cell :data:`POOLED`; source cells keep their own value (it is
    not used: a population's source cells serve each of its treatments).
    """
    if condition_key is None:
        return None
    conds = labels(adata, condition_key, "condition_key")
    if pool:
        conds = conds.copy()
        conds[roles == TARGET] = POOLED
    return conds


def check_not_pooled(adata: anndata.AnnData, roles: np.ndarray, *, skip: set[str],
                     source_role: str, target_role: str) -> None:
    """Refuse target cells that look like several treatments read as one (module docstring).

    A column (not in ``skip``) of labels is taken for treatments when every source cell has one
    value and the target cells have 2 to 64 others. CellDataError naming it and both fixes.
    """
    import pandas as pd

    src, tgt = roles == SOURCE, roles == TARGET
    if not src.any() or not tgt.any():
        return
    for key in adata.obs.columns:
        series = adata.obs[key]
        if key in skip or not (isinstance(series.dtype, pd.CategoricalDtype)
                               or pd.api.types.is_object_dtype(series)
                               or pd.api.types.is_string_dtype(series)):
            continue
        values = labels(adata, key, "column")
        before, after = _levels(values[src]), _levels(values[tgt])
        if len(before) == 1 and 2 <= len(after) <= _MAX_LEVELS and before[0] not in after:
            shown = ", ".join(after[:6]) + (", ..." if len(after) > 6 else "")
            raise CellDataError(
                f"the {target_role} cells fall into {len(after)} levels of obs[{key!r}] "
                f"({shown}) while every {source_role} cell has {key}={before[0]!r}: these look "
                "like treatments, which would be pooled into one target. Pass "
                f"condition_key={key!r} (--condition-key {key}) for one flow per treatment, or "
                "pool=True (--pool-treatments) to pool them on purpose")

"""AnnData -> populations: which cells are a population, its source and its targets, from ``obs``.

The user names the ``obs`` columns (the objects are in :mod:`.populations`):

- ``population_key``: the population of each cell (a patient sample, a well, a replicate);
- ``condition_key`` and ``control``: the scanpy / pertpy layout, one column with each cell's
  condition and its untreated level (``condition = control / IFNb / LPS``, ``control="control"``):
  control cells are the sources, every other level a treatment with its target cells;
- or ``role_key``: whether a cell is a source or a target (values ``source_role`` /
  ``target_role``; rows with any other value are ignored, so predictions can live in the same
  file), with ``condition_key`` (optional) naming each *target* cell's treatment;
- ``pool``: read several treatments as one target on purpose (never silently:
  :mod:`.columns`);
- ``pair_key`` (optional): an index that matches a source cell with its target cell (letters);
  pairs are then kept when training (same rows), otherwise source and target are independent.

The source cells of a population serve each of its treatments: one
:class:`~.populations.PopulationPair` per (population, treatment).

Features come from ``X`` (``rep="X"``, sparse matrices are densified after a memory estimate) or
an ``obsm`` key such as ``"X_pca"``. Every bad input is a :class:`CellDataError` that names it: a
missing column, an empty population, NaNs, features that differ between the source and the
target file. Predictions are written back by :mod:`.predictions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sciflow.resources import check_memory

from .columns import (
    SOURCE,
    TARGET,
    cell_roles,
    check_not_pooled,
    column,
    groups,
    labels,
    target_conditions,
)
from .origin import origin_of, unique_names
from .populations import CellDataError, CellPopulations, PopulationPair

if TYPE_CHECKING:
    import anndata

__all__ = [
    "CellDataError",
    "PopulationPair",
    "CellPopulations",
    "read_h5ad",
    "read_populations",
    "feature_matrix",
    "filter_obs",
]


def __getattr__(name: str) -> Any:
    """The writers that moved to :mod:`.predictions` stay importable from here."""
    if name in ("predictions_to_anndata", "read_predictions"):
        from . import predictions

        return getattr(predictions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_h5ad(path: str | Path) -> anndata.AnnData:
    """Read an .h5ad file with a clear error when it is missing or not AnnData."""
    import anndata

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .h5ad file at {str(path)!r}")
    try:
        return anndata.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for a foreign file
        raise CellDataError(f"{str(path)!r} is not a readable AnnData .h5ad file "
                            f"({type(err).__name__}: {err})") from err


def feature_matrix(adata: anndata.AnnData, rep: str = "X") -> tuple[np.ndarray, tuple[str, ...]]:
    """The (n_obs, D) float32 feature matrix at ``rep`` and its feature names.

    ``rep="X"`` reads ``adata.X`` (densified if sparse) with ``var_names``; any other value is an
    ``obsm`` key (names ``"<rep>_<i>"``, or the columns of an ``obsm`` DataFrame).
    """
    if rep == "X":
        if adata.X is None:
            raise CellDataError("adata.X is empty; pass rep=<an obsm key> holding the features, "
                                f"available obsm keys: {list(adata.obsm.keys())}")
        mat = adata.X
        names = tuple(str(v) for v in adata.var_names)
    else:
        if rep not in adata.obsm:
            raise CellDataError(f"rep={rep!r} is not an obsm key of this AnnData; available: "
                                f"{['X', *adata.obsm.keys()]}")
        mat = adata.obsm[rep]
        cols = getattr(mat, "columns", None)
        names = tuple(str(c) for c in cols) if cols is not None else \
            tuple(f"{rep}_{i}" for i in range(np.shape(mat)[1]))
    shape = tuple(np.shape(mat))
    if len(shape) == 2 and 0 in shape:
        raise CellDataError(f"features at {rep!r} are empty (shape {shape}): no cells or no "
                            "features to learn from")
    if hasattr(mat, "toarray"):
        check_memory(2.0 * np.prod(shape) * 4, f"densifying the sparse {rep!r} of shape {shape}",
                     name="--rep")
        mat = mat.toarray()
    arr = np.asarray(mat)
    if arr.ndim != 2:
        raise CellDataError(f"features at {rep!r} must be a 2-D matrix, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise CellDataError(f"features at {rep!r} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False), names


_labels, _groups, _column_series = labels, groups, column  # their former private names


def _check_finite(x: np.ndarray, population: str, role: str) -> None:
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise CellDataError(f"population {population!r} has {int(bad.sum())} {role} cell(s) with "
                            "NaN or inf features; drop or impute them first")


def _table(adata: anndata.AnnData, x: np.ndarray, role: str, spec: dict[str, Any],
           roles: np.ndarray) -> dict[str, Any]:
    """The cells of one role in one AnnData: features, names, pairing index, row groups."""
    pops = labels(adata, spec["population_key"], "population_key")
    conds = target_conditions(adata, roles, condition_key=spec["condition_key"],
                              pool=spec["pool"])
    pair = column(adata, spec["pair_key"], "pair_key").to_numpy() if spec["pair_key"] else None
    rows = np.nonzero(roles == role)[0]
    what = spec["source_role"] if role == SOURCE else spec["target_role"]
    if rows.size == 0:
        if spec["control"] is not None:
            raise CellDataError(
                f"no treated cell: obs[{spec['condition_key']!r}] holds only the control level "
                f"{spec['control']!r}; training and scoring need the treated cells too")
        found = sorted({r for r in set(labels(adata, spec["role_key"], "role_key").tolist())
                        if r is not None})[:10]
        raise CellDataError(f"no cell has {spec['role_key']}={what!r}; the values found are "
                            f"{found}; set source_role/target_role to match your data")
    n_missing = sum(p is None for p in pops[rows])
    if n_missing:
        raise CellDataError(f"{n_missing} {what} cell(s) have no value in "
                            f"obs[{spec['population_key']!r}]")
    keys = [pops] if conds is None else [pops, conds]
    return {"x": x, "pair": pair, "groups": groups(keys, rows), "names": unique_names(adata),
            "rows": rows}


def read_populations(
    adata: anndata.AnnData | str | Path,
    *,
    population_key: str,
    role_key: str | None = "role",
    condition_key: str | None = None,
    control: str | None = None,
    pool: bool = False,
    pair_key: str | None = None,
    source_role: str = "source",
    target_role: str = "target",
    rep: str = "X",
    target_adata: anndata.AnnData | str | Path | None = None,
    require_target: bool = True,
    conditions: Sequence[str] | None = None,
) -> CellPopulations:
    """Read populations, their source cells and their target cells from AnnData.

    Parameters
    ----------
    adata:
        AnnData (or a path to an .h5ad file) holding the source cells and, unless
        ``target_adata`` is given, the target cells too.
    population_key, condition_key, pair_key:
        The ``obs`` columns naming each cell's population, its condition and its pairing index;
        see the module docstring.
    control:
        The untreated level of ``condition_key`` (``"control"``): its cells are the sources and
        every other level is a treatment (no role column needed). None: use ``role_key``.
    pool:
        Read the target cells of every treatment as one target (condition
        :data:`~.columns.POOLED` with a condition column). Without it, several treatments are
        one target each, and role-column data whose targets look like several treatments of
        an unnamed column are refused (:func:`~.columns.check_not_pooled`).
    role_key, source_role, target_role:
        Without ``control``: the ``obs`` column marking source and target cells, and its values.
    rep:
        ``"X"`` or an ``obsm`` key; the features of every cell.
    target_adata:
        Target cells from a second AnnData (its features must match ``adata``'s).
    require_target:
        False reads populations for prediction: populations need source cells only; their pairs
        are the conditions among their target cells if any, else ``conditions``.
    conditions:
        For prediction: the conditions to predict for every population (overrides the targets').

    Returns
    -------
    CellPopulations
        One pair per (population, condition), in order of first appearance, with the names of
        the source cells and what writing predictions back needs (``origin``).
    """
    if isinstance(adata, (str, Path)):
        adata = read_h5ad(adata)
    if isinstance(target_adata, (str, Path)):
        target_adata = read_h5ad(target_adata)
    if not isinstance(pool, bool):
        raise CellDataError(f"pool={pool!r}: expected True or False")
    spec = {"population_key": population_key, "role_key": role_key,
            "condition_key": condition_key, "control": control, "pool": pool,
            "pair_key": pair_key, "source_role": source_role, "target_role": target_role}
    x_src, names = feature_matrix(adata, rep)
    tables = [(adata, x_src)]
    if target_adata is not None:
        x_tgt, tnames = feature_matrix(target_adata, rep)
        if tnames != names:
            raise CellDataError(
                f"source and target have different features at {rep!r}: source has {len(names)} "
                f"({', '.join(names[:4])}...), target has {len(tnames)} "
                f"({', '.join(tnames[:4])}...); they must share one feature space and order")
        tables.append((target_adata, x_tgt))
    roles = [cell_roles(ad, role_key=role_key, condition_key=condition_key, control=control,
                        source_role=source_role, target_role=target_role) for ad, _ in tables]
    src = _table(*tables[0], SOURCE, spec, roles[0])
    tgt = None
    has_targets = bool((roles[-1] == TARGET).any())
    if require_target or has_targets:
        tgt = _table(*tables[-1], TARGET, spec, roles[-1])
    src_rows = {k[0]: v for k, v in src["groups"].items()}
    if condition_key is not None:  # source cells serve every condition: regroup by population
        merged: dict[str, list[np.ndarray]] = {}
        for k, v in src["groups"].items():
            merged.setdefault(k[0], []).append(v)
        src_rows = {k: np.sort(np.concatenate(v)) for k, v in merged.items()}
    src_pops = list(src_rows)
    tgt_rows: dict[str, dict[str | None, np.ndarray]] = {}
    if tgt is not None:
        for k, v in tgt["groups"].items():
            cond = k[1] if condition_key is not None else None
            if condition_key is not None and cond is None:
                raise CellDataError(f"population {k[0]!r} has {target_role} cells with no value "
                                    f"in obs[{condition_key!r}]")
            tgt_rows.setdefault(k[0], {})[cond] = v
        missing_src = sorted(set(tgt_rows) - set(src_pops))
        if missing_src:
            what = f"control ({control!r})" if control is not None else source_role
            raise CellDataError(f"population(s) {missing_src[:10]} have {target_role} cells but no "
                                f"{what} cells: every population needs its source cells")
        if require_target:
            missing_tgt = [p for p in src_pops if p not in tgt_rows]
            if missing_tgt:
                raise CellDataError(f"population(s) {missing_tgt[:10]} have {source_role} cells "
                                    f"but no {target_role} cells; training needs both")
        if condition_key is None and not pool:
            check_not_pooled(tables[-1][0], roles[-1], skip={population_key, role_key, pair_key},
                             source_role=source_role, target_role=target_role)
    pairs: list[PopulationPair] = []
    for pop in src_pops:
        s_rows = src_rows[pop]
        x0 = src["x"][s_rows]
        _check_finite(x0, pop, source_role)
        by_cond = tgt_rows.get(pop, {})
        if conditions is not None:
            cond_list: list[str | None] = list(conditions)
        elif by_cond:
            cond_list = list(by_cond)
        else:
            cond_list = [None]
        for cond in cond_list:
            t_rows = by_cond.get(cond)
            x1, paired, order = None, False, np.arange(s_rows.size)
            if t_rows is not None:
                x1 = tgt["x"][t_rows]
                _check_finite(x1, pop, target_role)
                if pair_key is not None:
                    order, x1 = _match_pairs(pop, src["pair"][s_rows], x1, tgt["pair"][t_rows],
                                             pair_key)
                    paired = True
            pairs.append(PopulationPair(
                population=pop, condition=cond, source=torch.from_numpy(np.array(x0[order])),
                target=None if x1 is None else torch.from_numpy(np.array(x1)), paired=paired,
                source_names=tuple(src["names"][s_rows[order]].tolist())))
    if not pairs:
        raise CellDataError("no populations found")
    keys = {"population": population_key, "role": role_key, "condition": condition_key,
            "pair": pair_key, "control": control, "pool": pool}
    origin = origin_of(adata, rep, np.concatenate(list(src_rows.values())), src["names"])
    return CellPopulations(pairs=tuple(pairs), features=names, rep=rep, keys=keys, origin=origin)


def _match_pairs(pop: str, k0: np.ndarray, x1: np.ndarray, k1: np.ndarray,
                 pair_key: str) -> tuple[np.ndarray, np.ndarray]:
    """The order of the source rows and the target rows sorted by their shared pairing index."""
    if len(set(k0.tolist())) != len(k0) or set(k0.tolist()) != set(k1.tolist()) or \
            len(k0) != len(k1):
        raise CellDataError(f"population {pop!r}: obs[{pair_key!r}] must match every source cell "
                            f"with exactly one target cell ({len(k0)} source, {len(k1)} target "
                            "cells); drop pair_key to treat them as unpaired")
    return np.argsort(k0, kind="stable"), x1[np.argsort(k1, kind="stable")]


def filter_obs(adata: anndata.AnnData, where: Sequence[str]) -> anndata.AnnData:
    """Keep the cells whose obs columns equal the given values: ``["split=train", ...]``."""
    mask = np.ones(adata.n_obs, dtype=bool)
    for clause in where:
        key, sep, value = clause.partition("=")
        if not sep or not key:
            raise CellDataError(f"filter {clause!r} must read KEY=VALUE, e.g. split=train")
        col = labels(adata, key, "filter column")
        hit = col == value
        if not hit.any():
            found = sorted({v for v in set(col.tolist()) if v is not None})[:10]
            raise CellDataError(f"filter {clause!r} matches no cell; obs[{key!r}] holds {found}")
        mask &= hit
    if not mask.any():
        raise CellDataError(f"the filters {list(where)} together match no cell")
    return adata[mask].copy() if not mask.all() else adata

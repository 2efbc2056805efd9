"""Where the cells came from: what writing predictions back as AnnData needs of the input.

:class:`CellOrigin` keeps, from the AnnData the populations were read from, the ``obs`` of the
source cells (every column, indexed by unique cell names), the input's ``var`` and, when the
features are a PCA of the genes, a :class:`GeneMap` back to gene space. :mod:`.predictions` uses
it so that a predicted cell keeps its source cell's ``obs``, and the predicted AnnData shares the
input's genes.

The gene map follows scanpy's layout: ``sc.pp.pca`` writes the scores to ``obsm["X_pca"]`` and the
loadings to ``varm["PCs"]`` (``obsm[key]`` / ``varm[key]`` with ``key_added``), so that

    X ~ X_pca @ PCs.T + mu,

mu the per-gene centre PCA removed. scanpy does not store mu, so :func:`gene_map` estimates it
from the input's own ``X`` as the least-squares offset mu = mean(X) - mean(X_pca) @ PCs.T over
the input's cells (exactly PCA's centre when PCA was fitted on these cells). Without ``X`` the
map has no offset and the genes it gives are centred. Genes left out of the PCA (loadings all 0,
or NaN as in older files) get their mean over the input's cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sciflow.resources import check_memory

if TYPE_CHECKING:
    import anndata
    import pandas as pd

__all__ = ["GeneMap", "CellOrigin", "gene_map", "unique_names", "origin_of"]


@dataclass(frozen=True)
class GeneMap:
    """The linear map from a representation back to genes: ``genes(z) = z @ loadings.T + offset``.

    loadings: (n_genes, D) float64 (``varm[varm_key]``, NaN rows set to 0). offset: (n_genes,) or
    None (then the genes are centred). var: the input's ``var`` (its index: the gene names).
    unmapped: genes whose loadings are all 0 (not in the PCA): they get their offset only.
    """

    loadings: np.ndarray
    offset: np.ndarray | None
    var: pd.DataFrame
    varm_key: str
    unmapped: int

    def genes(self, z: np.ndarray) -> np.ndarray:
        """(n, D) representation -> (n, n_genes) float32 gene values."""
        check_memory(8.0 * z.shape[0] * self.loadings.shape[0],
                     f"{z.shape[0]} predicted cells x {self.loadings.shape[0]} genes",
                     name="predictions")
        x = np.asarray(z, dtype=np.float64) @ self.loadings.T
        if self.offset is not None:
            x += self.offset
        return x.astype(np.float32)

    def describe(self, rep: str) -> str:
        """One sentence on what the predicted ``X`` holds (written to ``uns['sciflow']``)."""
        centre = ("+ mu, mu = mean(X) - mean(" + rep + f") @ varm['{self.varm_key}'].T over the "
                  "input cells (PCA's centre when it was fitted on them)"
                  if self.offset is not None else
                  "(centred: the input had no X to recover PCA's centre from; add each gene's "
                  "mean before comparing with uncentred data)")
        left = (f"; {self.unmapped} genes outside the PCA hold their mean"
                if self.unmapped and self.offset is not None else "")
        return f"genes: obsm['{rep}'] @ varm['{self.varm_key}'].T {centre}{left}"


@dataclass(frozen=True)
class CellOrigin:
    """What predictions written as AnnData keep of the input (module docstring).

    obs: the ``obs`` of the source cells (all columns), indexed by unique cell names. var: the
    input's ``var`` when the features are ``X`` (None otherwise). genes: the map back to genes
    when the features are a PCA with loadings in ``varm`` (None otherwise). uns_pca: the input's
    ``uns`` entry of that PCA (variance, variance_ratio, params), copied to the output.
    """

    obs: pd.DataFrame
    var: pd.DataFrame | None = None
    genes: GeneMap | None = None
    uns_pca: dict[str, Any] | None = None


def unique_names(adata: anndata.AnnData) -> np.ndarray:
    """``obs_names`` as strings, made unique (``name-1``, ``name-2``, ...) if they are not."""
    import anndata

    names = adata.obs_names
    if not names.is_unique:
        names = anndata.utils.make_index_unique(names.astype(str))
    return np.asarray(names.astype(str), dtype=object)


def gene_map(adata: anndata.AnnData, rep: str) -> GeneMap | None:
    """The map from ``obsm[rep]`` back to genes, or None when the input has no loadings for it
    (``varm["PCs"]`` for ``rep="X_pca"``, else ``varm[rep]``, of shape (n_vars, D))."""
    if rep == "X" or rep not in adata.obsm:
        return None
    key = "PCs" if rep == "X_pca" else rep
    z = np.asarray(adata.obsm[rep], dtype=np.float64)
    if key not in adata.varm or np.shape(adata.varm[key]) != (adata.n_vars, z.shape[1]):
        return None
    loadings = np.array(adata.varm[key], dtype=np.float64)
    loadings[~np.isfinite(loadings).all(axis=1)] = 0.0
    offset = None
    if adata.X is not None and adata.n_obs > 0:
        mean_x = np.asarray(adata.X.mean(axis=0), dtype=np.float64).ravel()
        offset = mean_x - z.mean(axis=0) @ loadings.T
        if not np.isfinite(offset).all():
            offset = None
    unmapped = int((np.abs(loadings).sum(axis=1) == 0).sum())
    return GeneMap(loadings=loadings, offset=offset, var=adata.var.copy(), varm_key=key,
                   unmapped=unmapped)


def origin_of(adata: anndata.AnnData, rep: str, rows: np.ndarray,
              names: np.ndarray) -> CellOrigin:
    """The origin of the cells at ``rows`` of ``adata`` (their ``obs``, indexed by ``names[rows]``;
    ``names`` from :func:`unique_names`), the input's ``var`` or gene map for ``rep``."""
    obs = adata.obs.iloc[np.sort(rows)].copy()
    obs.index = names[np.sort(rows)].astype(str)
    genes = gene_map(adata, rep)
    pca_key = "pca" if rep == "X_pca" else rep
    uns = adata.uns.get(pca_key) if genes is not None else None
    return CellOrigin(obs=obs, var=adata.var.copy() if rep == "X" else None, genes=genes,
                      uns_pca=dict(uns) if isinstance(uns, Mapping) else None)

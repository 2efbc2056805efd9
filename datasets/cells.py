"""A real-cell population task with ground truth, built from scanpy's shipped PBMC cells.

The cells are the 700 human PBMCs of ``pbmc68k_reduced`` that ship inside the scanpy package
(``scanpy/datasets/10x_pbmc68k_reduced.h5ad``; read offline from the installed package, never
downloaded, never copied). Each cell keeps its first ``n_pcs`` principal components (``X_pca``,
divided by the standard deviation of PC1 so that features are O(1)) and its annotated cell type,
grouped into four lineages (myeloid, B, T, NK).

Populations mimic patient samples: a population is a mix of lineages with weights
w ~ Dirichlet(concentration * 1); its cells are drawn lineage by lineage from a pool of real cells
(with replacement). Training populations draw from 60 % of the cells, test populations from the
other 40 %, so a test population is unseen twice over: new mix, new cells.

Each population is treated with each condition by a known *population-dependent* dynamics, a
mean-field ODE over the population's cells (a stand-in for paracrine signalling):

    dx_i/dt = beta(q) v + gamma(q) (mu(t) - x_i),   t in [0, 1],

with q the population's myeloid weight and mu(t) the population mean, so mu(1) = mu(0) + beta v
and x_i(1) = mu(1) + exp(-gamma) (x_i(0) - mu(0)) (closed form; :func:`treat`). The conditions:

- ``"stim"``:  beta = 3 (q - 1/2) along the myeloid-minus-lymphoid axis, gamma = 0.5 — cells move
  one way in myeloid-rich populations and the other way in lymphoid-rich ones;
- ``"inhib"``: beta = 1 along PC3, gamma = 2 q — the population homogenises faster the more
  myeloid cells it holds.

Targets get measurement noise N(0, noise^2). As in a real screen, the source (control) cells and
the treated cells of a population are independent draws from its mix (unpaired). A single cell
cannot tell which population it came from, so a per-cell model cannot know q or mu: the task
needs the population.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import anndata
    import pandas as pd

__all__ = [
    "LINEAGES",
    "TREATMENTS",
    "PBMCTaskConfig",
    "pbmc68k_path",
    "load_pbmc68k",
    "treat",
    "pbmc_populations",
]

LINEAGES: dict[str, tuple[str, ...]] = {
    "myeloid": ("CD14+ Monocyte", "Dendritic", "CD34+"),
    "B": ("CD19+ B",),
    "T": ("CD4+/CD25 T Reg", "CD8+ Cytotoxic T", "CD8+/CD45RA+ Naive Cytotoxic",
          "CD4+/CD45RO+ Memory", "CD4+/CD45RA+/CD25- Naive T"),
    "NK": ("CD56+ NK",),
}
"""The four lineages and the ``bulk_labels`` cell types each groups."""

TREATMENTS: tuple[str, ...] = ("stim", "inhib")


def pbmc68k_path() -> Path:
    """Where the installed scanpy keeps ``10x_pbmc68k_reduced.h5ad`` (found without importing
    scanpy)."""
    spec = importlib.util.find_spec("scanpy")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scanpy is not installed; install sciflow[cells] for the PBMC "
                                  "task (its data ship inside the scanpy package)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / \
        "10x_pbmc68k_reduced.h5ad"
    if not path.is_file():
        raise FileNotFoundError(f"scanpy is installed but {path} is missing")
    return path


def load_pbmc68k() -> anndata.AnnData:
    """The 700 PBMCs x 765 genes of scanpy's ``pbmc68k_reduced`` (with ``X_pca``, bulk labels)."""
    import warnings

    import anndata

    with warnings.catch_warnings():  # the file predates anndata's obsp layout
        warnings.simplefilter("ignore")
        return anndata.read_h5ad(pbmc68k_path())


@dataclass(frozen=True, kw_only=True)
class PBMCTaskConfig:
    """Settings of the PBMC population task.

    n_train, n_test: populations per split. cells: cells per source set and per treated set.
    n_pcs: features (leading PCs). test_fraction: share of the real cells reserved for test
    populations. concentration: Dirichlet concentration of the lineage mixes (small: extreme mixes).
    noise: std of the measurement noise added to treated cells. seed: every random draw.
    genes: lay the task out as a scanpy file in gene space (:func:`pbmc_populations`).
    """

    seed: int = 0
    n_train: int = 48
    n_test: int = 16
    cells: int = 300
    n_pcs: int = 5
    test_fraction: float = 0.4
    concentration: float = 1.0
    noise: float = 0.05
    genes: bool = False

    def __post_init__(self) -> None:
        for name, low in (("seed", 0), ("n_train", 1), ("n_test", 0), ("cells", 2), ("n_pcs", 3)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"PBMCTaskConfig.{name} must be an integer >= {low}, "
                                 f"got {value!r}")
        if self.n_pcs > 50:
            raise ValueError(f"PBMCTaskConfig.n_pcs={self.n_pcs}; the file holds 50 PCs")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {self.test_fraction}")
        if not self.concentration > 0 or not self.noise >= 0:
            raise ValueError("concentration must be > 0 and noise >= 0, got "
                             f"{self.concentration} and {self.noise}")


def treat(x: np.ndarray, *, q: float, treatment: str, axis: np.ndarray) -> np.ndarray:
    """The exact time-1 map of the mean-field ODE (module docstring) for one population.

    x (n, D): the population's cells before treatment; q: its myeloid weight in [0, 1];
    axis (D,): unit myeloid-minus-lymphoid direction (used by ``"stim"``). Returns (n, D).
    """
    if treatment == "stim":
        beta, gamma, v = 3.0 * (q - 0.5), 0.5, axis
    elif treatment == "inhib":
        v = np.zeros(x.shape[1])
        v[2] = 1.0
        beta, gamma = 1.0, 2.0 * q
    else:
        raise ValueError(f"treatment {treatment!r}; choose from {list(TREATMENTS)}")
    mu = x.mean(axis=0)
    return mu + beta * v + np.exp(-gamma) * (x - mu)


def pbmc_populations(config: PBMCTaskConfig | None = None) -> anndata.AnnData:
    """Build the task as AnnData: a row per cell of every source and treated set.

    ``X`` and ``obsm["X_pca"]`` (n_obs, n_pcs) float32 hold the features (with
    ``config.genes``: ``obsm["X_pca"]`` in pbmc68k_reduced's PC units, ``varm["PCs"]`` and ``X``
    in its 765 genes, see :func:`_in_gene_space`); ``obs`` has
    ``population`` (``"train-07"``, ``"test-03"``), ``role`` (``"source"``/``"target"``),
    ``treatment`` (``"control"`` for source cells, else the condition), ``split``, ``cell_type``,
    ``lineage`` and ``barcode`` (the real cell drawn). ``uns["pbmc_task"]`` records the config,
    each population's lineage weights and the stim axis.
    """
    import anndata
    import pandas as pd

    cfg = config if config is not None else PBMCTaskConfig()
    raw = load_pbmc68k()
    pcs = np.asarray(raw.obsm["X_pca"], dtype=np.float64)[:, :cfg.n_pcs]
    unit = float(pcs[:, 0].std())
    pcs = pcs / unit
    labels = raw.obs["bulk_labels"].astype(str).to_numpy()
    lineage_of = {t: lin for lin, types in LINEAGES.items() for t in types}
    unknown = sorted(set(labels) - set(lineage_of))
    if unknown:
        raise ValueError(f"pbmc68k_reduced has cell types {unknown} not in LINEAGES")
    lineage = np.array([lineage_of[t] for t in labels])
    names = list(LINEAGES)
    myeloid = lineage == "myeloid"
    axis = pcs[myeloid].mean(0) - pcs[~myeloid].mean(0)
    axis = axis / np.linalg.norm(axis)

    rng = np.random.default_rng(cfg.seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for lin in names:  # hold out the same share of every lineage
        idx = np.nonzero(lineage == lin)[0]
        n_hold = max(1, int(round(cfg.test_fraction * len(idx))))
        is_test[rng.choice(idx, size=n_hold, replace=False)] = True
    pools = {(split, lin): np.nonzero((lineage == lin) & (is_test == (split == "test")))[0]
             for split in ("train", "test") for lin in names}

    def draw(weights: np.ndarray, split: str) -> np.ndarray:
        counts = rng.multinomial(cfg.cells, weights)
        return np.concatenate([rng.choice(pools[(split, lin)], size=c, replace=True)
                               for lin, c in zip(names, counts)])

    blocks, frames, mixes = [], [], {}
    for split, count in (("train", cfg.n_train), ("test", cfg.n_test)):
        for j in range(count):
            pop = f"{split}-{j:02d}"
            w = rng.dirichlet(np.full(len(names), cfg.concentration))
            mixes[pop] = {lin: float(v) for lin, v in zip(names, w)}
            q = float(w[0])
            sets = [("source", "control", draw(w, split), None)]
            for tr in TREATMENTS:
                before = draw(w, split)
                after = treat(pcs[before], q=q, treatment=tr, axis=axis)
                after = after + cfg.noise * rng.standard_normal(after.shape)
                sets.append(("target", tr, before, after))
            for role, tr, cells, x in sets:
                blocks.append(pcs[cells] if x is None else x)
                frames.append(pd.DataFrame({
                    "population": pop, "role": role, "treatment": tr, "split": split,
                    "cell_type": labels[cells], "lineage": lineage[cells],
                    "barcode": np.asarray(raw.obs_names)[cells]}))
    obs = pd.concat(frames, ignore_index=True)
    for col in ("population", "role", "treatment", "split", "cell_type", "lineage"):
        obs[col] = obs[col].astype("category")
    obs.index = obs.index.astype(str)
    x = np.concatenate(blocks).astype(np.float32)
    if cfg.genes:
        adata = _in_gene_space(raw, x, obs, unit, cfg.n_pcs)
    else:
        adata = anndata.AnnData(X=x, obs=obs)
        adata.var_names = [f"PC{i + 1}" for i in range(cfg.n_pcs)]
        adata.obsm["X_pca"] = x.copy()
    adata.uns["pbmc_task"] = {
        "seed": cfg.seed, "n_train": cfg.n_train, "n_test": cfg.n_test, "cells": cfg.cells,
        "n_pcs": cfg.n_pcs, "test_fraction": cfg.test_fraction,
        "concentration": cfg.concentration, "noise": cfg.noise,
        "stim_axis": axis.astype(np.float32), "lineage_weights": mixes,
        "source": "scanpy/datasets/10x_pbmc68k_reduced.h5ad", "genes": cfg.genes,
        "pc_unit": unit,
    }
    return adata


def _in_gene_space(raw: anndata.AnnData, x: np.ndarray, obs: pd.DataFrame, unit: float,
                   n_pcs: int) -> anndata.AnnData:
    """The task as scanpy lays out a PCA: X in gene space, obsm["X_pca"], varm["PCs"].

    The features x (task units) times ``unit`` (the std of PC1) are ``obsm["X_pca"]`` in
    pbmc68k_reduced's own PC units; ``varm["PCs"]`` holds its first ``n_pcs`` loadings (genes
    outside its PCA, NaN there, get 0 as in current scanpy) and ``X`` = X_pca @ PCs.T + mu, mu
    the least-squares centre of pbmc68k_reduced (mean(X) - mean(X_pca) @ PCs.T): each cell's
    rank-n_pcs reconstruction in its 765 scaled genes.
    """
    import anndata

    loadings = np.nan_to_num(np.asarray(raw.varm["PCs"], dtype=np.float64)[:, :n_pcs])
    scores = np.asarray(raw.obsm["X_pca"], dtype=np.float64)[:, :n_pcs]
    centre = np.asarray(raw.X, dtype=np.float64).mean(0) - scores.mean(0) @ loadings.T
    z = x.astype(np.float64) * unit
    adata = anndata.AnnData(X=(z @ loadings.T + centre).astype(np.float32), obs=obs,
                            var=raw.var.copy())
    adata.obsm["X_pca"] = z.astype(np.float32)
    adata.varm["PCs"] = loadings.astype(np.float32)
    adata.uns["pca"] = {k: np.asarray(raw.uns["pca"][k])[:n_pcs]
                        for k in ("variance", "variance_ratio")}
    return adata

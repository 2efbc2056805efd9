"""The PBMC population task: offline data, the known dynamics, splits and seeding."""

import numpy as np
import pytest

from sciflow.datasets.cells import (
    LINEAGES,
    TREATMENTS,
    PBMCTaskConfig,
    pbmc68k_path,
    pbmc_populations,
    treat,
)


def test_cells_ship_inside_the_scanpy_package():
    path = pbmc68k_path()
    assert path.is_file() and "scanpy" in path.parts and path.name == "10x_pbmc68k_reduced.h5ad"


@pytest.mark.parametrize("treatment", TREATMENTS)
def test_treat_is_the_exact_flow_of_the_mean_field_ode(treatment):
    """Integrate dx_i/dt = beta v + gamma (mean(x) - x_i) with RK4: it lands on treat()."""
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(30, 5))
    axis = rng.normal(size=5)
    axis /= np.linalg.norm(axis)
    q = 0.3
    beta, gamma, v = (3.0 * (q - 0.5), 0.5, axis) if treatment == "stim" else \
        (1.0, 2.0 * q, np.eye(5)[2])

    def f(x):
        return beta * v + gamma * (x.mean(0) - x)

    x, h = x0.copy(), 1.0 / 200
    for _ in range(200):
        k1 = f(x)
        k2 = f(x + 0.5 * h * k1)
        k3 = f(x + 0.5 * h * k2)
        k4 = f(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(treat(x0, q=q, treatment=treatment, axis=axis), x, atol=1e-9)


def test_treat_depends_on_the_population_not_only_the_cell():
    rng = np.random.default_rng(1)
    axis = np.eye(5)[0]
    cell = rng.normal(size=(1, 5))
    a = np.vstack([cell, rng.normal(size=(20, 5))])
    b = np.vstack([cell, rng.normal(loc=2.0, size=(20, 5))])
    for tr in TREATMENTS:
        out_a = treat(a, q=0.2, treatment=tr, axis=axis)[0]
        out_b = treat(b, q=0.9, treatment=tr, axis=axis)[0]
        assert np.linalg.norm(out_a - out_b) > 0.1  # same cell, different populations
    with pytest.raises(ValueError, match="treatment 'heat'"):
        treat(a, q=0.5, treatment="heat", axis=axis)


def test_task_layout_splits_and_seed():
    cfg = PBMCTaskConfig(n_train=3, n_test=2, cells=40, seed=4)
    ad = pbmc_populations(cfg)
    assert ad.shape == (5 * 3 * 40, 5) and ad.obsm["X_pca"].shape == ad.shape
    assert set(ad.obs["treatment"]) == {"control", *TREATMENTS}
    assert set(ad.obs["lineage"]) <= set(LINEAGES)
    src = ad.obs[ad.obs["role"] == "source"]
    train_cells = set(src.loc[src["split"] == "train", "barcode"])
    test_cells = set(src.loc[src["split"] == "test", "barcode"])
    assert train_cells and test_cells and not train_cells & test_cells
    weights = ad.uns["pbmc_task"]["lineage_weights"]
    assert len(weights) == 5 and all(abs(sum(w.values()) - 1) < 1e-9 for w in weights.values())
    again = pbmc_populations(cfg)
    assert np.array_equal(ad.X, again.X)
    other = pbmc_populations(PBMCTaskConfig(n_train=3, n_test=2, cells=40, seed=5))
    assert not np.array_equal(ad.X, other.X)
    with pytest.raises(ValueError, match="n_pcs"):
        PBMCTaskConfig(n_pcs=2)


def test_gene_space_layout_is_scanpy_s_and_maps_back_exactly():
    """genes=True: X in pbmc68k_reduced's genes, obsm X_pca in its PC units, varm PCs; the
    single-cell domain maps the features back to exactly these genes (and the same dynamics)."""
    from sciflow.datasets.cells import load_pbmc68k
    from sciflow.domains.single_cell import read_populations
    from sciflow.domains.single_cell.origin import gene_map

    cfg = PBMCTaskConfig(n_train=2, n_test=1, cells=30, seed=3)
    plain, genes = pbmc_populations(cfg), pbmc_populations(PBMCTaskConfig(
        n_train=2, n_test=1, cells=30, seed=3, genes=True))
    unit = genes.uns["pbmc_task"]["pc_unit"]
    assert genes.shape == (plain.n_obs, 765) and genes.varm["PCs"].shape == (765, 5)
    np.testing.assert_allclose(genes.obsm["X_pca"], plain.X * unit, rtol=1e-5, atol=1e-5)
    assert list(genes.var_names) == list(load_pbmc68k().var_names)
    back = gene_map(genes, "X_pca").genes(genes.obsm["X_pca"])
    np.testing.assert_allclose(back, genes.X, atol=2e-4)
    cells = read_populations(genes, population_key="population", condition_key="treatment",
                             control="control", rep="X_pca")
    assert cells.conditions == tuple(sorted(TREATMENTS)) and len(cells.pairs) == 3 * 2

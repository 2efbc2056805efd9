"""AnnData -> populations: grouping by obs columns, pairing, conditions, and clear errors."""

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from sciflow.domains.single_cell import (
    CellDataError,
    filter_obs,
    predictions_to_anndata,
    read_populations,
    read_predictions,
)


def _adata(n_pop=3, n=12, dim=3, conditions=("a", "b"), seed=0, shuffle=True):
    rng = np.random.default_rng(seed)
    rows, xs = [], []
    for p in range(n_pop):
        src = rng.normal(p, 1.0, size=(n, dim))
        xs.append(src)
        rows += [{"pop": f"p{p}", "role": "source", "treat": "ctrl", "pair": i} for i in range(n)]
        for c in conditions:
            xs.append(src + (1.0 if c == "a" else -1.0))
            rows += [{"pop": f"p{p}", "role": "target", "treat": c, "pair": i} for i in range(n)]
    obs = pd.DataFrame(rows)
    x = np.concatenate(xs).astype(np.float32)
    if shuffle:
        perm = rng.permutation(len(obs))
        obs, x = obs.iloc[perm].reset_index(drop=True), x[perm]
    obs.index = obs.index.astype(str)
    ad = anndata.AnnData(X=x, obs=obs)
    ad.var_names = [f"g{i}" for i in range(dim)]
    ad.obsm["X_pca"] = 2.0 * x
    return ad


def test_one_pair_per_population_and_condition_with_shared_source():
    cells = read_populations(_adata(), population_key="pop", condition_key="treat")
    assert sorted(p.key for p in cells.pairs) == [f"p{i}|{c}" for i in range(3) for c in "ab"]
    assert cells.conditions == ("a", "b") and cells.dim == 3
    by_key = {p.key: p for p in cells.pairs}
    assert torch.equal(by_key["p1|a"].source, by_key["p1|b"].source)
    assert by_key["p1|a"].source.shape == (12, 3) and by_key["p1|a"].target.shape == (12, 3)
    assert not by_key["p1|a"].paired


def test_pair_key_restores_row_correspondence_after_shuffling():
    cells = read_populations(_adata(), population_key="pop", condition_key="treat",
                             pair_key="pair")
    for p in cells.pairs:
        shift = 1.0 if p.condition == "a" else -1.0
        assert p.paired
        torch.testing.assert_close(p.target - p.source, torch.full_like(p.source, shift))


def test_obsm_features_and_without_condition_column():
    ad = _adata(conditions=("a",))
    cells = read_populations(ad, population_key="pop", rep="X_pca")
    assert cells.conditions == () and all(p.condition is None for p in cells.pairs)
    assert cells.features == ("X_pca_0", "X_pca_1", "X_pca_2") and cells.rep == "X_pca"
    plain = read_populations(ad, population_key="pop")
    torch.testing.assert_close(cells.pairs[0].source, 2.0 * plain.pairs[0].source)


def test_missing_obs_column_is_named():
    with pytest.raises(CellDataError, match=r"population_key='patient' is not an obs column; "
                                            r"available columns: \['pop', 'role'"):
        read_populations(_adata(), population_key="patient")
    with pytest.raises(CellDataError, match="condition_key='drug'"):
        read_populations(_adata(), population_key="pop", condition_key="drug")
    with pytest.raises(CellDataError, match="rep='X_umap' is not an obsm key"):
        read_populations(_adata(), population_key="pop", rep="X_umap")


def test_nan_features_are_reported_with_their_population():
    ad = _adata()
    ad.X[np.nonzero((ad.obs["pop"] == "p2").to_numpy() & (ad.obs["role"] == "target")
                    .to_numpy())[0][:2], 1] = np.nan
    with pytest.raises(CellDataError, match="population 'p2' has 2 target cell"):
        read_populations(ad, population_key="pop", condition_key="treat")


def test_empty_populations_and_unknown_roles():
    ad = _adata()
    no_target = ad[~((ad.obs["pop"] == "p1") & (ad.obs["role"] == "target"))].copy()
    with pytest.raises(CellDataError, match=r"\['p1'\] have source cells but no target cells"):
        read_populations(no_target, population_key="pop")
    no_source = ad[~((ad.obs["pop"] == "p0") & (ad.obs["role"] == "source"))].copy()
    with pytest.raises(CellDataError, match=r"\['p0'\] have target cells but no source"):
        read_populations(no_source, population_key="pop")
    with pytest.raises(CellDataError, match="no cell has role='control'"):
        read_populations(ad, population_key="pop", source_role="control")
    # prediction: populations without targets are fine
    cells = read_populations(no_target, population_key="pop", require_target=False,
                             condition_key="treat")
    assert "p1" in cells.populations


def test_source_and_target_files_with_different_features():
    ad = _adata()
    src = ad[ad.obs["role"] == "source"].copy()
    tgt = ad[ad.obs["role"] == "target"].copy()
    ok = read_populations(src, target_adata=tgt, population_key="pop", condition_key="treat")
    assert len(ok.pairs) == 6
    other = anndata.AnnData(X=tgt.X[:, :2], obs=tgt.obs.copy())
    with pytest.raises(CellDataError, match="source and target have different features"):
        read_populations(src, target_adata=other, population_key="pop")


def test_bad_pairing_is_explained():
    ad = _adata(shuffle=False)
    ad.obs["pair"] = 0
    with pytest.raises(CellDataError, match="must match every source cell with exactly one"):
        read_populations(ad, population_key="pop", condition_key="treat", pair_key="pair")


def test_predictions_round_trip_through_h5ad(tmp_path):
    cells = read_populations(_adata(), population_key="pop", condition_key="treat",
                             rep="X_pca")
    preds = [p.source + 0.5 for p in cells.pairs]
    out = predictions_to_anndata(cells, preds, method="mfm")
    path = tmp_path / "pred.h5ad"
    out.write_h5ad(path)
    back = read_predictions(path, population_key="pop", condition_key="treat", rep="X_pca")
    for p, x in zip(cells.pairs, preds):
        torch.testing.assert_close(back[p.key], x)
    again = read_populations(path, population_key="pop", condition_key="treat",
                             source_role="predicted", require_target=False, rep="X")
    assert again.dim == 3


def test_filter_obs():
    ad = _adata()
    kept = filter_obs(ad, ["pop=p1", "role=source"])
    assert kept.n_obs == 12
    with pytest.raises(CellDataError, match="matches no cell"):
        filter_obs(ad, ["pop=p9"])
    with pytest.raises(CellDataError, match="KEY=VALUE"):
        filter_obs(ad, ["pop"])

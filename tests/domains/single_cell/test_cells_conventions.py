"""The conventions scanpy / pertpy users expect: one condition column with a control level, no
silent pooling, predicted AnnData that keeps obs, links to its source cells, lives in gene space
(so it concatenates with real cells), carries its provenance, and an honest BASE comparison."""

import copy
import warnings
from dataclasses import replace

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from sciflow.checkpoint import load_checkpoint
from sciflow.domains.single_cell import (
    CellDataError,
    Config,
    evaluate,
    load,
    predictions_to_anndata,
    read_populations,
    read_predictions,
    train,
)
from sciflow.domains.single_cell.baselines import WorseThanBaselineWarning
from sciflow.domains.single_cell.columns import POOLED
from sciflow.domains.single_cell.origin import gene_map
from sciflow.domains.single_cell.predictions import predict_anndata
from sciflow.errors import InputError

GENES, K = 12, 3


def _scanpy_like(n=20, samples=3, conditions=("control", "IFNb", "LPS"), seed=0, role=False,
                 x=True):
    """A scanpy-processed file: genes in X exactly in a K-dim PCA subspace plus a centre."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(GENES, K)))[0]
    centre = rng.normal(3.0, 1.0, size=GENES)
    rows, zs = [], []
    for s in range(samples):
        for i, cond in enumerate(conditions):
            z = rng.normal(size=(n, K)) + np.eye(K)[i % K] * (1 + s)
            zs.append(z)
            rows += [{"sample": f"s{s}", "condition": cond, "cell_type": rng.choice(["T", "B"]),
                      "n_counts": float(rng.integers(500, 900)), "batch": f"b{s % 2}",
                      **({"role": "source" if cond == "control" else "target"} if role else {})}
                     for _ in range(n)]
    z = np.concatenate(zs)
    obs = pd.DataFrame(rows)
    obs.index = [f"AAAC{i:04d}-1" for i in range(len(obs))]
    for col in ("sample", "condition", "cell_type"):
        obs[col] = obs[col].astype("category")
    ad = anndata.AnnData(X=(z @ basis.T + centre).astype(np.float32) if x else None, obs=obs)
    if not x:
        ad = anndata.AnnData(obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(GENES)]))
    ad.var_names = [f"gene{i}" for i in range(GENES)]
    ad.var["gene_ids"] = [f"ENSG{i:05d}" for i in range(GENES)]
    ad.obsm["X_pca"] = z.astype(np.float32)
    ad.varm["PCs"] = basis.astype(np.float32)
    ad.uns["pca"] = {"variance": np.ones(K), "variance_ratio": np.full(K, 1 / K),
                     "params": {"zero_center": True}}
    return ad, centre


KEYS = dict(population_key="sample", condition_key="condition", control="control", rep="X_pca")


def test_a_condition_column_with_a_control_level_needs_no_role_column():
    ad, _ = _scanpy_like()
    cells = read_populations(ad, **KEYS)
    assert cells.conditions == ("IFNb", "LPS")
    assert [p.key for p in cells.pairs] == [f"s{s}|{c}" for s in range(3) for c in ("IFNb", "LPS")]
    for p in cells.pairs:
        rows = ((ad.obs["sample"] == p.population) & (ad.obs["condition"] == "control")).to_numpy()
        treated = ((ad.obs["sample"] == p.population) &
                   (ad.obs["condition"] == p.condition)).to_numpy()
        np.testing.assert_array_equal(p.source.numpy(), ad.obsm["X_pca"][rows])
        np.testing.assert_array_equal(p.target.numpy(), ad.obsm["X_pca"][treated])
        assert p.source_names == tuple(ad.obs_names[rows])
    assert cells.keys["control"] == "control" and cells.keys["pool"] is False


def test_control_level_errors_name_the_fix():
    ad, _ = _scanpy_like()
    with pytest.raises(CellDataError, match=r"control='ctrl' is not a value of "
                                            r"obs\['condition'\]; its values are \['IFNb', 'LPS', "
                                            r"'control'\]"):
        read_populations(ad, **{**KEYS, "control": "ctrl"})
    with pytest.raises(InputError, match="control='control' needs condition_key"):
        read_populations(ad, population_key="sample", control="control")
    with pytest.raises(CellDataError, match=r"role_key='role' is not an obs column.*"
                                            r"--condition-key, --control"):
        read_populations(ad, population_key="sample", condition_key="condition")
    gaps = ad.copy()
    gaps.obs["condition"] = gaps.obs["condition"].astype(object)
    gaps.obs.iloc[:3, gaps.obs.columns.get_loc("condition")] = None
    with pytest.raises(CellDataError, match=r"3 cell\(s\) have no value in obs\['condition'\]"):
        read_populations(gaps, **KEYS)
    only_control = ad[ad.obs["condition"] == "control"].copy()
    with pytest.raises(CellDataError, match="no treated cell"):
        read_populations(only_control, **KEYS)
    cells = read_populations(only_control, **KEYS, require_target=False,
                             conditions=["IFNb"])  # prediction needs no treated cells
    assert [p.key for p in cells.pairs] == ["s0|IFNb", "s1|IFNb", "s2|IFNb"]


def test_several_treatments_are_never_pooled_silently():
    ad, _ = _scanpy_like(role=True)
    with pytest.raises(CellDataError, match=r"2 levels of obs\['condition'\] \(IFNb, LPS\) while "
                                            r"every source cell has condition='control'.*"
                                            r"--condition-key condition.*--pool-treatments"):
        read_populations(ad, population_key="sample", rep="X_pca")
    pooled = read_populations(ad, population_key="sample", rep="X_pca", pool=True)
    assert [p.key for p in pooled.pairs] == ["s0", "s1", "s2"]
    assert all(p.target.shape[0] == 40 for p in pooled.pairs)
    by_level = read_populations(ad, population_key="sample", condition_key="condition",
                                rep="X_pca")
    assert by_level.conditions == ("IFNb", "LPS")
    for layout in (dict(population_key="sample", condition_key="condition"), KEYS):
        cells = read_populations(ad, **{**layout, "rep": "X_pca"}, pool=True)
        assert cells.conditions == (POOLED,) and all(p.target.shape[0] == 40 for p in cells.pairs)
        torch.testing.assert_close(cells.pairs[0].target, pooled.pairs[0].target)


def test_predicted_rows_in_the_same_file_are_skipped():
    ad, _ = _scanpy_like()
    cells = read_populations(ad, **KEYS)
    predicted = predictions_to_anndata(cells, [p.source + 1 for p in cells.pairs])
    both = anndata.concat([ad, predicted], join="outer")
    again = read_populations(both, **KEYS)
    for a, b in zip(cells.pairs, again.pairs):
        torch.testing.assert_close(a.target, b.target)


def test_predicted_cells_keep_their_source_cells_obs_and_link_back(tmp_path):
    ad, _ = _scanpy_like()
    cells = read_populations(ad, **KEYS)
    preds = [p.source + 0.5 for p in cells.pairs]
    path = tmp_path / "pred.h5ad"
    predictions_to_anndata(cells, preds).write_h5ad(path)
    out = anndata.read_h5ad(path)
    assert out.obs_names.is_unique and out.n_obs == sum(len(p) for p in preds)
    assert set(ad.obs.columns) <= set(out.obs.columns)
    src = ad.obs.loc[out.obs["source_cell"].astype(str)]
    for col in ("sample", "cell_type", "n_counts", "batch"):
        np.testing.assert_array_equal(out.obs[col].astype(str).to_numpy(),
                                      src[col].astype(str).to_numpy())
    expected = [f"{s}-pred-{c}" for s, c in zip(out.obs["source_cell"], out.obs["condition"])]
    assert list(out.obs_names) == expected
    assert set(src["condition"]) == {"control"} and set(out.obs["role"]) == {"predicted"}
    np.testing.assert_allclose(out.obsm["X_pca"], torch.cat(preds).numpy())
    back = read_predictions(path)  # keys and rep from uns['sciflow']
    for p, x in zip(cells.pairs, preds):
        torch.testing.assert_close(back[p.key], x)


def test_gene_space_through_varm_pcs_and_concat_keeps_the_genes():
    ad, centre = _scanpy_like()
    cells = read_populations(ad, **KEYS)
    out = predictions_to_anndata(cells, [p.source for p in cells.pairs])  # "no change"
    assert list(out.var_names) == list(ad.var_names) and "gene_ids" in out.var
    src = ad[out.obs["source_cell"].astype(str)]
    np.testing.assert_allclose(out.X, src.X, atol=2e-5)  # X = X_pca @ PCs.T + the centre
    assert "PCs" in out.varm and out.uns["pca"]["params"]["zero_center"]
    assert out.uns["sciflow"]["X"].startswith("genes: obsm['X_pca'] @ varm['PCs'].T + mu")
    joined = anndata.concat([ad, out])
    assert joined.n_vars == GENES and joined.n_obs == ad.n_obs + out.n_obs
    np.testing.assert_allclose(gene_map(ad, "X_pca").offset, centre, atol=1e-4)


def test_gene_space_without_x_is_centred_and_says_so():
    ad, _ = _scanpy_like(x=False)
    cells = read_populations(ad, **KEYS)
    out = predictions_to_anndata(cells, [p.source for p in cells.pairs])
    assert out.n_vars == GENES and "centred" in out.uns["sciflow"]["X"]
    np.testing.assert_allclose(out.X, out.obsm["X_pca"] @ ad.varm["PCs"].T, atol=1e-5)
    bare = ad.copy()
    del bare.varm["PCs"]
    plain = predictions_to_anndata(read_populations(bare, **KEYS),
                                   [p.source for p in cells.pairs])
    assert plain.n_vars == K and "no varm loadings" in plain.uns["sciflow"]["X"]


def test_features_read_from_x_keep_the_input_var():
    ad, _ = _scanpy_like()
    cells = read_populations(ad, **{**KEYS, "rep": "X"})
    out = predictions_to_anndata(cells, [p.source for p in cells.pairs])
    assert list(out.var["gene_ids"]) == list(ad.var["gene_ids"]) and not out.obsm
    assert anndata.concat([ad, out]).n_vars == GENES


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    ad, _ = _scanpy_like()
    cells = read_populations(ad, **KEYS)
    config = Config(model_type="fm", hidden=8, layers=1, fourier=4, time_dim=8,
                    cells_per_population=16).replace(train={"steps": 2, "progress": False})
    path = tmp_path_factory.mktemp("model") / "fm.pt"
    train(cells, config).save(path)
    return load(path), cells, path


def test_provenance_in_uns_survives_h5ad(model, tmp_path):
    flow, cells, path = model
    out, preds = predict_anndata(flow, cells, solver="rk4", steps=3, seed=7, spread_repeats=2)
    out.write_h5ad(tmp_path / "p.h5ad")
    info = anndata.read_h5ad(tmp_path / "p.h5ad").uns["sciflow"]
    assert info["checkpoint_digest"] == load_checkpoint(path).digest
    assert (info["solver"], int(info["sample_steps"]), int(info["seed"])) == ("rk4", 3, 7)
    assert info["model_type"] == "fm" and info["sciflow_version"] and "pushed" in info["prediction"]
    assert int(info["spread_repeats"]) == 2 and "bootstrap" in info["spread"]
    table = info["populations"]
    assert list(table["population"]) == [p.population for p in cells.pairs]
    assert np.all(np.asarray(table["spread"]) > 0) and len(preds) == len(cells.pairs)


def test_a_prediction_worse_than_base_is_a_warning_and_a_line_in_the_table():
    ad, _ = _scanpy_like()
    cells = read_populations(ad, **KEYS)
    far = [p.source + 10.0 for p in cells.pairs]
    with pytest.warns(WorseThanBaselineWarning, match=r"far scores worse than BASE .* worse on 6 "
                                                      r"of 6 populations"):
        result = evaluate(None, cells, predictions={"far": far})
    assert "BASE" in result.scores and len(result.warnings) == 1
    table = result.table()
    assert "**warning**: far scores worse than BASE" in table and "% worse |" in table
    with warnings.catch_warnings():
        warnings.simplefilter("error", WorseThanBaselineWarning)
        good = evaluate(None, cells, predictions={"truth": [p.target for p in cells.pairs]})
    assert not good.warnings and "**warning**" not in good.table()


def _still(flow):
    """The flow with a zero velocity: its prediction is the source itself."""
    net = copy.deepcopy(flow.net)
    with torch.no_grad():
        net.velocity.output.weight.zero_()
        net.velocity.output.bias.zero_()
    return replace(flow, net=net)


def test_spread_of_a_still_flow_is_the_standard_error_of_the_source_mean(model):
    flow, cells, _ = model
    still = _still(flow)
    g = torch.Generator().manual_seed(0)
    pairs = [replace(cells.pairs[0], source=torch.randn(50, K, generator=g),
                     target=torch.randn(50, K, generator=g), condition="IFNb",
                     population=f"q{i}", source_names=None) for i in range(20)]
    with pytest.warns(WorseThanBaselineWarning, match="FM scores worse than BASE"):  # it is BASE
        result = evaluate(still, pairs, solver="euler", steps=1, spread_repeats=48)
    spread = np.array([s.spread for s in result.spread["FM"]])
    sem = np.array([float((p.source.var(0).mean() / 50).sqrt()) for p in pairs])
    assert 0.8 < np.median(spread / sem) < 1.2
    # targets drawn like the sources: an unbiased "model", so errors match the spread
    assert 0.7 < result.spread_skill("FM") < 1.4
    assert "Spread-skill ratio" in result.table()
    with pytest.raises(InputError, match="spread_repeats=1"):
        evaluate(still, pairs, spread_repeats=1)

"""``sciflow cells train|predict|evaluate`` end to end on a small .h5ad, and its error paths."""

import anndata
import numpy as np
import pandas as pd
import pytest

from sciflow.cli import main


@pytest.fixture()
def h5ad(tmp_path):
    rng = np.random.default_rng(0)
    rows, xs = [], []
    for p in range(6):
        scale = 0.5 + 0.3 * p
        src = scale * rng.normal(size=(40, 3))
        xs += [src, src / scale + 1.0]
        split = "train" if p < 4 else "test"
        for role in ("source", "target"):
            rows += [{"pop": f"p{p}", "role": role, "drug": "ctrl" if role == "source" else "d1",
                      "split": split}] * 40
    obs = pd.DataFrame(rows)
    obs.index = obs.index.astype(str)
    ad = anndata.AnnData(X=np.concatenate(xs).astype(np.float32), obs=obs)
    ad.obsm["X_pca"] = ad.X[:, ::-1].copy()
    path = tmp_path / "cells.h5ad"
    ad.write_h5ad(path)
    return path


def test_train_predict_evaluate(h5ad, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["single-cell", "train", "--data", str(h5ad), "--where", "split=train",
               "--population-key", "pop", "--condition-key", "drug", "--rep", "X_pca",
               "--model-type", "mfm", "--steps", "4", "--hidden", "16", "--layers", "2",
               "--knn", "5", "--gnn-hidden", "8", "--gnn-layers", "2",
               "--cells-per-population", "20", "--populations-per-batch", "2", "--out", str(out)])
    assert rc == 0 and (out / "model.pt").exists()
    assert "trained mfm on 4 population pairs x 3 features: 4 steps" in capsys.readouterr().out
    pred = tmp_path / "pred.h5ad"
    rc = main(["cells", "predict", "--checkpoint", str(out / "model.pt"), "--data", str(h5ad),
               "--where", "split=test", "--solver", "euler", "--sample-steps", "3",
               "-o", str(pred)])
    assert rc == 0
    ad = anndata.read_h5ad(pred)
    assert ad.n_obs == 80 and set(ad.obs["pop"]) == {"p4", "p5"}
    assert set(ad.obs["drug"]) == {"d1"} and ad.obsm["X_pca"].shape == (80, 3)
    assert np.isfinite(ad.X).all()
    scores = tmp_path / "scores.csv"
    rc = main(["cells", "evaluate", "--checkpoint", str(out / "model.pt"), "--data", str(h5ad),
               "--where", "split=test", "--baselines", "--solver", "euler", "--sample-steps", "3",
               "-o", str(scores)])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("MFM", "BASE", "SHIFT", "IDEAL-SHIFT"):
        assert f"| {name} |" in text
    table = pd.read_csv(scores)
    assert len(table) == 8 and set(table["population"]) == {"p4", "p5"}
    rc = main(["cells", "evaluate", "--predictions", str(pred), "--data", str(h5ad),
               "--population-key", "pop", "--condition-key", "drug", "--rep", "X_pca",
               "--where", "split=test"])
    assert rc == 0 and "| predicted |" in capsys.readouterr().out


def test_former_flags_still_work(h5ad, tmp_path):
    """--method (now --model-type) and --solver-steps (now --sample-steps) are hidden aliases."""
    out = tmp_path / "run"
    assert main(["cells", "train", "--data", str(h5ad), "--population-key", "pop", "--method",
                 "cgfm", "--steps", "2", "--hidden", "8", "--layers", "1",
                 "--cells-per-population", "8", "--out", str(out)]) == 0
    from sciflow.domains.single_cell import load

    assert load(out / "model.pt").config.model_type == "cgfm"
    assert main(["cells", "predict", "--checkpoint", str(out / "model.pt"), "--data", str(h5ad),
                 "--solver", "rk4", "--solver-steps", "2", "-o", str(tmp_path / "p.h5ad")]) == 0


def test_help_teaches_the_new_flags(capsys):
    with pytest.raises(SystemExit):
        main(["cells", "train", "--help"])
    text = capsys.readouterr().out
    assert "--model-type" in text and "--method" not in text and "default 256" in text
    with pytest.raises(SystemExit):
        main(["cells", "predict", "--help"])
    text = capsys.readouterr().out
    assert "--sample-steps" in text and "--solver-steps" not in text and "--device" in text


def test_baselines_listed_by_the_cli_are_the_domain_s():
    from sciflow.domains.single_cell import BASELINES
    from sciflow.domains.single_cell.cli import _BASELINES

    assert _BASELINES == BASELINES


def test_user_errors_exit_2_with_a_message(h5ad, tmp_path, capsys):
    rc = main(["cells", "train", "--data", str(h5ad), "--population-key", "patient",
               "--steps", "1", "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "population_key='patient' is not an obs column" in capsys.readouterr().err
    rc = main(["cells", "train", "--data", str(h5ad), "--population-key", "pop",
               "--knn", "50", "--steps", "1", "--out", str(tmp_path / "r2")])
    assert rc == 2 and "fewer than the 51 cells this model needs (knn + 1 = 51" in \
        capsys.readouterr().err
    args = ["cells", "train", "--data", str(h5ad), "--population-key", "pop", "--model-type",
            "fm", "--steps", "2", "--hidden", "8", "--layers", "1", "--cells-per-population", "8",
            "--out", str(tmp_path / "r3")]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2 and "pass --resume" in capsys.readouterr().err
    assert main(args[:-2] + ["--steps", "3", "--out", str(tmp_path / "r3"), "--resume"]) == 0
    capsys.readouterr()
    bigger = [a if a != "8" else "16" for a in args] + ["--resume"]
    assert main(bigger) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "hidden: 8 there, 16 now" in err and "Traceback" not in err
    rc = main(["cells", "evaluate", "--data", str(h5ad), "--population-key", "pop"])
    assert rc == 2 and "exactly one of --checkpoint" in capsys.readouterr().err
    rc = main(["cells", "predict", "--checkpoint", str(tmp_path / "none.pt"), "--data",
               str(h5ad)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


@pytest.fixture()
def scanpy_h5ad(tmp_path):
    """Genes in X, scanpy's PCA (obsm X_pca, varm PCs) and one condition column with a control."""
    rng = np.random.default_rng(1)
    genes, k = 10, 3
    basis = np.linalg.qr(rng.normal(size=(genes, k)))[0]
    rows, zs = [], []
    for s in range(5):
        for i, cond in enumerate(("control", "IFNb", "LPS")):
            zs.append(rng.normal(size=(30, k)) + (i - 1) * np.eye(k)[0] * (1 + 0.3 * s))
            rows += [{"sample": f"s{s}", "condition": cond, "cell_type": f"t{j % 3}",
                      "split": "train" if s < 3 else "test"} for j in range(30)]
    z = np.concatenate(zs)
    obs = pd.DataFrame(rows, index=[f"c{i}" for i in range(len(rows))])
    ad = anndata.AnnData(X=(z @ basis.T + 1.0).astype(np.float32), obs=obs)
    ad.var_names = [f"gene{i}" for i in range(genes)]
    ad.obsm["X_pca"] = z.astype(np.float32)
    ad.varm["PCs"] = basis.astype(np.float32)
    path = tmp_path / "scanpy.h5ad"
    ad.write_h5ad(path)
    return path


TINY = ["--steps", "3", "--hidden", "8", "--layers", "1", "--knn", "4", "--gnn-hidden", "4",
        "--gnn-layers", "1", "--cells-per-population", "10"]


def test_control_level_predict_plot_and_concat_with_real_cells(scanpy_h5ad, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["cells", "train", "--data", str(scanpy_h5ad), "--where", "split=train",
                 "--population-key", "sample", "--condition-key", "condition", "--control",
                 "control", "--rep", "X_pca", *TINY, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "on 6 population pairs" in out and "treatments: IFNb, LPS (control level 'control')" \
        in out
    pred = tmp_path / "pred.h5ad"
    test_only = ["--where", "split=test", "--where", "condition=control"]  # no treated cells
    assert main(["cells", "predict", "--checkpoint", str(run / "model.pt"), "--data",
                 str(scanpy_h5ad), *test_only, "--solver", "euler", "--sample-steps", "2",
                 "--spread-repeats", "2", "--plot", "-o", str(pred)]) == 0
    out = capsys.readouterr().out
    assert "predicting every treatment the model knows (IFNb, LPS)" in out and "10 genes" in out
    assert pred.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    real = anndata.read_h5ad(scanpy_h5ad)
    ad = anndata.read_h5ad(pred)
    assert ad.n_obs == 2 * 2 * 30 and set(ad.obs["condition"]) == {"IFNb", "LPS"}
    assert set(ad.obs["cell_type"]) == {"t0", "t1", "t2"} and ad.obs_names.is_unique
    assert ad.obs_names[0] == f"{ad.obs['source_cell'].iloc[0]}-pred-IFNb"
    assert anndata.concat([real, ad]).n_vars == 10
    info = ad.uns["sciflow"]
    assert info["obs"]["control"] == "control" and len(info["checkpoint_digest"]) == 64
    # the file says how it was read: evaluate needs no keys, rep or checkpoint to score it
    assert main(["cells", "evaluate", "--predictions", str(pred), "--data", str(scanpy_h5ad),
                 "--where", "split=test"]) == 0
    assert "| predicted |" in capsys.readouterr().out


def test_evaluate_warns_when_worse_than_base_and_writes_strict_json(scanpy_h5ad, tmp_path,
                                                                    capsys):
    import json

    run = tmp_path / "run"
    assert main(["cells", "train", "--data", str(scanpy_h5ad), "--where", "split=train",
                 "--population-key", "sample", "--condition-key", "condition", "--control",
                 "control", "--rep", "X_pca", "--model-type", "fm", *TINY[:2], "--lr", "0.3",
                 "--out", str(run)]) == 0  # a too-high learning rate: worse than no change
    capsys.readouterr()
    scores = tmp_path / "scores.json"
    assert main(["cells", "evaluate", "--checkpoint", str(run / "model.pt"), "--data",
                 str(scanpy_h5ad), "--where", "split=test", "--solver", "euler",
                 "--sample-steps", "2", "--spread-repeats", "2", "--plot", "-o",
                 str(scores)]) == 0
    captured = capsys.readouterr()
    assert "sciflow cells: warning: FM scores worse than BASE" in captured.err
    assert "**warning**: FM scores worse than BASE" in captured.out
    assert "Spread-skill ratio" in captured.out and scores.with_suffix(".png").exists()

    def refuse(text):
        raise ValueError(f"non-standard JSON constant {text}")

    data = json.loads(scores.read_text(), parse_constant=refuse)
    assert data["run"]["model_type"] == "fm" and {r["method"] for r in data["rows"]} == \
        {"FM", "BASE"}


def test_pooling_needs_its_flag(tmp_path, capsys):
    rng = np.random.default_rng(2)
    rows = [{"pop": f"p{p}", "role": role, "treatment": t}
            for p in range(3) for role, t in (("source", "ctrl"), ("target", "a"),
                                               ("target", "b")) for _ in range(12)]
    obs = pd.DataFrame(rows, index=[str(i) for i in range(len(rows))])
    path = tmp_path / "roles.h5ad"
    anndata.AnnData(X=rng.normal(size=(len(rows), 3)).astype(np.float32), obs=obs).write_h5ad(path)
    args = ["cells", "train", "--data", str(path), "--population-key", "pop", "--model-type",
            "fm", *TINY]
    assert main(args + ["--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err
    assert "2 levels of obs['treatment'] (a, b)" in err and "--pool-treatments" in err
    assert main(args + ["--pool-treatments", "--out", str(tmp_path / "r2")]) == 0
    assert "on 3 population pairs" in capsys.readouterr().out
    assert main(args + ["--condition-key", "treatment", "--out", str(tmp_path / "r3")]) == 0
    assert "on 6 population pairs" in capsys.readouterr().out

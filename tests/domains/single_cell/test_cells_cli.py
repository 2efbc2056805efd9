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

"""The letters task: rendering recipe, seeding, splits, AnnData layout, and the reference sheet."""

import numpy as np
import pytest

from sciflow.datasets.letters import (
    TRAIN_LETTERS,
    LettersConfig,
    letter_points,
    letter_populations,
    letters_anndata,
)


def test_letter_points_fill_the_recipe_box_and_keep_aspect_ratio():
    for char in "AIW":
        pts = letter_points(char)
        span = pts.max(0) - pts.min(0)
        assert pts.shape[1] == 2 and pts.shape[0] > 500
        np.testing.assert_allclose(span.max(), 6.0)  # [-3, 3] along the longer axis
        np.testing.assert_allclose(pts.max(0), -pts.min(0))  # centred by the min-max scaling
    i = letter_points("I")
    assert np.ptp(i[:, 0]) < 0.5 * np.ptp(i[:, 1])  # a tall, thin letter stays tall and thin
    assert not np.array_equal(letter_points("A")[:100], letter_points("V")[:100])


def test_letter_points_bad_input():
    with pytest.raises(ValueError, match="one capital letter"):
        letter_points("a")
    with pytest.raises(ValueError, match="one capital letter"):
        letter_points("AB")


def test_populations_splits_and_names():
    pops = letter_populations(LettersConfig(rotations=2))
    assert [p.split for p in pops].count("train") == 2 * 24
    assert [p.name for p in pops if p.split != "train"] == ["X0", "X1", "Y0", "Y1"]
    assert "X" not in TRAIN_LETTERS and "Y" not in TRAIN_LETTERS and len(TRAIN_LETTERS) == 24


def test_seed_reproduces_bit_for_bit_and_differs_across_seeds():
    cfg = LettersConfig(rotations=1, train="AB", val="X", test="Y")
    a, b = letter_populations(cfg), letter_populations(cfg)
    for p, q in zip(a, b):
        assert p.rotation == q.rotation
        assert np.array_equal(p.source, q.source) and np.array_equal(p.target, q.target)
    c = letter_populations(LettersConfig(seed=1, rotations=1, train="AB", val="X", test="Y"))
    assert not np.array_equal(a[0].target, c[0].target)


def test_target_is_rotated_jittered_letter_and_source_adds_blur():
    cfg = LettersConfig(rotations=3, train="K", val="", test="")
    for p in letter_populations(cfg):
        c, s = np.cos(p.rotation), np.sin(p.rotation)
        unrotated = p.target.astype(np.float64) @ np.array([[c, -s], [s, c]])
        jitter = unrotated - letter_points("K")
        assert abs(jitter.std() - cfg.noise) < 0.005 and abs(jitter.mean()) < 0.01
        blur = p.source.astype(np.float64) - p.target
        assert abs(blur.std() - cfg.source_noise) < 0.02


def test_anndata_layout_pairs_rows():
    ad = letters_anndata(LettersConfig(rotations=1, train="AB"), splits=("train", "test"))
    assert set(ad.obs["split"]) == {"train", "test"}
    assert {"population", "role", "pair", "letter", "rotation"} <= set(ad.obs.columns)
    src = ad[(ad.obs["population"] == "A0") & (ad.obs["role"] == "source")]
    tgt = ad[(ad.obs["population"] == "A0") & (ad.obs["role"] == "target")]
    assert np.array_equal(src.obs["pair"].to_numpy(), tgt.obs["pair"].to_numpy())
    assert src.n_obs == letter_points("A").shape[0] and ad.X.dtype == np.float32
    with pytest.raises(ValueError, match="splits"):
        letters_anndata(splits=("holdout",))


def test_predict_source_distance_matches_reference_sheet():
    """Reference sheet (DejaVu Sans, test letter Y): predicting the source gives W1 ~ 0.254."""
    from sciflow.metrics import wasserstein1

    pops = letter_populations(LettersConfig(rotations=2, train="", val="", test="Y"))
    w1 = np.mean([wasserstein1(p.source, p.target) for p in pops])
    assert 0.21 < w1 < 0.30

"""Population metrics: definitions, invariances, and errors."""

import math

import numpy as np
import pytest
import torch

from sciflow.domains.single_cell.metrics import (
    PopulationScores,
    feature_correlation_agreement,
    mean_l2_of_means,
    mean_scores,
    score_population,
)


def test_mean_l2_is_rms_of_the_mean_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 4))
    shift = np.array([1.0, -2.0, 0.0, 2.0])
    b = a[::-1] + shift  # order does not matter, only the means
    assert mean_l2_of_means(b, a) == pytest.approx(np.linalg.norm(shift) / 2.0)


def test_feature_correlation_agreement_properties():
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.8, 0.1], [0.8, 1.0, -0.5], [0.1, -0.5, 1.0]])
    a = rng.multivariate_normal(np.zeros(3), cov, size=500)
    assert feature_correlation_agreement(a, a) == pytest.approx(1.0)
    # per-feature positive rescaling and shifts keep every correlation
    b = a * np.array([3.0, 0.2, 7.0]) + 5.0
    assert feature_correlation_agreement(b, a) == pytest.approx(1.0)
    # the definition: Pearson r of the (rho_01, rho_02, rho_12) vectors
    c = rng.normal(size=(300, 3))
    c[:, 2] += c[:, 0]

    def rho(x):
        return [np.corrcoef(x[:, i], x[:, j])[0, 1] for i, j in ((0, 1), (0, 2), (1, 2))]

    expected = np.corrcoef(rho(c), rho(a))[0, 1]
    assert feature_correlation_agreement(c, a) == pytest.approx(expected)
    with pytest.raises(ValueError, match="D >= 3"):
        feature_correlation_agreement(a[:, :2], a[:, :2])


def test_score_population_of_identical_sets_is_perfect():
    x = torch.randn(60, 3, generator=torch.Generator().manual_seed(2))
    s = score_population(x, x.clone())
    assert s.w1 == pytest.approx(0.0, abs=1e-9) and s.w2 == pytest.approx(0.0, abs=1e-9)
    assert s.mmd == pytest.approx(0.0, abs=1e-12) and s.mean_l2 == 0.0
    assert s.corr == pytest.approx(1.0)
    assert math.isnan(score_population(x[:, :2], x[:, :2]).corr)


def test_score_population_translation_and_errors():
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(3))
    s = score_population(x + torch.tensor([0.3, 0.4]), x)
    assert s.w1 == pytest.approx(0.5, rel=1e-6) and s.w2 == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(ValueError, match="pred has D=2 features but true has D=3"):
        score_population(x, torch.randn(5, 3))
    with pytest.raises(ValueError, match="NaN"):
        score_population(torch.full((4, 2), float("nan")), x)


def test_mean_scores_ignores_nan():
    a = PopulationScores(w1=1.0, w2=2.0, mmd=0.1, mean_l2=0.5, corr=math.nan)
    b = PopulationScores(w1=3.0, w2=4.0, mmd=0.3, mean_l2=1.5, corr=0.5)
    m = mean_scores([a, b])
    assert (m.w1, m.w2, m.mean_l2, m.corr) == (2.0, 3.0, 1.0, 0.5)
    assert m.mmd == pytest.approx(0.2)
    with pytest.raises(ValueError):
        mean_scores([])

"""Forecast scores: orderings that must hold, exact values on hand-made cases, clear errors."""

import pytest
import torch

from sciflow.domains.feature_forecasting import metrics as M


def test_sample_errors_orderings_and_deterministic_case():
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(6, 3, 4, 4, generator=g)
    samples = truth[:, None] + torch.randn(6, 5, 3, 4, 4, generator=g)
    e = M.sample_errors(samples, truth)
    assert e.min_of_k <= e.mean_of_k
    assert e.mse_of_mean <= e.mean_of_k  # Jensen: the mean's error never exceeds the average
    assert e.spread > 0 and e.best.shape == (6,)
    one = M.sample_errors(samples[:, :1], truth)
    assert one.mse_of_mean == pytest.approx(one.mean_of_k) == pytest.approx(one.min_of_k)
    assert one.spread == 0.0
    exact = samples.clone()
    exact[:, 2] = truth
    e2 = M.sample_errors(exact, truth)
    assert e2.min_of_k == 0.0 and bool((e2.best == 2).all())
    with pytest.raises(ValueError, match=r"\(B, K, \*\)"):
        M.sample_errors(samples, truth[:, :2])


def test_mean_iou_on_a_hand_made_case():
    truth = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    # class 0: inter 1, union 2; class 1: inter 2, union 3
    assert M.mean_iou(pred, truth, 3) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert M.mean_iou(truth, truth, 3) == 1.0
    with pytest.raises(ValueError, match="labels"):
        M.mean_iou(pred + 5, truth, 3)


def test_depth_errors_values():
    d = torch.rand(2, 5, 5) + 1.0
    assert M.depth_errors(d, d) == (0.0, 1.0)
    absrel, delta1 = M.depth_errors(1.3 * d, d)
    assert absrel == pytest.approx(0.3) and delta1 == 0.0
    _, delta1 = M.depth_errors(1.2 * d, d)
    assert delta1 == 1.0
    with pytest.raises(ValueError, match="positive"):
        M.depth_errors(d - 5, d)


def test_sharpness_of_a_blurred_map_is_below_one():
    x = torch.randn(4, 3, 16, 16)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    assert M.sharpness(x, x) == pytest.approx(1.0)
    assert M.sharpness(blurred, x) < 0.5
    assert M.sharpness(3 * x, x) == pytest.approx(9.0)


def test_nearest_branch_and_histograms():
    branches = torch.randn(3, 4, 2, 5)
    pick = torch.tensor([[0, 3], [2, 2], [1, 0]])
    samples = branches[torch.arange(3)[:, None], pick] + 1e-3
    assert torch.equal(M.nearest_branch(samples, branches), pick)
    q = M.branch_histogram(pick, 4)
    assert torch.allclose(q, torch.tensor([2, 1, 2, 1], dtype=torch.float64) / 6)
    p = torch.tensor([0.5, 0.3, 0.2])
    assert M.total_variation(p, p) == 0.0
    assert M.total_variation(p, torch.tensor([0.0, 0.0, 1.0])) == pytest.approx(0.8)


def test_per_forecast_tv_of_point_masses_and_perfect_histograms():
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    point = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]])
    assert M.per_forecast_tv(p, point) == pytest.approx(((1 - 0.5) + (1 - 0.25)) / 2)
    perfect = torch.tensor([[0, 0, 1, 2]])
    assert M.per_forecast_tv(p, perfect) == pytest.approx(0.0)
    floors = [M.tv_sampling_floor(p, n, trials=400) for n in (1, 8, 64)]
    assert floors[0] == pytest.approx(1 - float((p**2).sum()), abs=0.05)
    assert floors[0] > floors[1] > floors[2] > 0

"""Image, ensemble and change-detection metrics against closed forms and limiting cases."""

from __future__ import annotations

import math

import pytest
import torch

from sciflow.domains.remote_sensing.metrics import (
    change_scores,
    crps_ensemble,
    image_scores,
    mae,
    psnr,
    rmse,
    sam,
    ssim,
)


def data(seed=0, shape=(2, 3, 4, 16, 16)):
    g = torch.Generator().manual_seed(seed)
    true = 0.1 + 0.3 * torch.rand(shape, generator=g, dtype=torch.float64)
    mask = torch.rand(shape[:2] + shape[3:], generator=g) < 0.6
    return true, mask


def test_psnr_rmse_mae_closed_forms():
    true, mask = data()
    pred = true + 0.1
    assert psnr(pred, true, mask) == pytest.approx(20.0)
    assert rmse(pred, true, mask) == pytest.approx(0.1)
    assert mae(pred, true, mask) == pytest.approx(0.1)
    # only masked pixels count
    wild = torch.where(mask[:, :, None], pred, pred + 5.0)
    assert psnr(wild, true, mask) == pytest.approx(20.0)


def test_ssim_is_one_for_identity_and_drops_with_noise():
    true, mask = data()
    assert ssim(true, true, mask) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(3)
    small = ssim(true + 0.01 * torch.randn(true.shape, generator=g, dtype=true.dtype), true, mask)
    large = ssim(true + 0.1 * torch.randn(true.shape, generator=g, dtype=true.dtype), true, mask)
    assert 1.0 > small > large


def test_sam_is_an_angle_between_spectra():
    true, mask = data()
    assert sam(2.5 * true, true, mask) == pytest.approx(0.0, abs=1e-5)  # scale-invariant
    a = torch.zeros(1, 1, 2, 2, 2, dtype=torch.float64)
    b = torch.zeros_like(a)
    a[:, :, 0], b[:, :, 1] = 1.0, 1.0
    assert sam(a, b, torch.ones(1, 1, 2, 2, dtype=torch.bool)) == pytest.approx(90.0)


def test_crps_limits_and_two_member_closed_form():
    true, mask = data()
    pred = true + 0.05
    assert crps_ensemble(pred[None], true, mask) == pytest.approx(mae(pred, true, mask))
    same = torch.stack([pred, pred, pred])
    assert crps_ensemble(same, true, mask) == pytest.approx(mae(pred, true, mask))
    # members y - d and y + d: CRPS = d - (1 / 8) * 2 * 2d = d / 2
    d = 0.04
    pair = torch.stack([true - d, true + d])
    assert crps_ensemble(pair, true, mask) == pytest.approx(d / 2)
    # a spread ensemble around the truth scores better than its mean's MAE would suggest
    scores = image_scores(pair.mean(0), true, mask, samples=pair)
    assert scores.crps == pytest.approx(d / 2) and scores.psnr > 100


def test_change_scores():
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 3, (2, 4, 8, 8), generator=g)
    perfect = change_scores(true, true, 3)
    assert perfect.miou == perfect.bc == perfect.sc == perfect.scs == perfect.accuracy == 100.0
    frozen = true[:, :1].expand_as(true)  # predicts no change at all
    s = change_scores(frozen, true, 3)
    assert s.bc == 0.0 and s.scs == pytest.approx(0.5 * s.sc)
    calm = true[:, :1].expand_as(true).contiguous()
    assert math.isnan(change_scores(calm, calm, 3).sc)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        change_scores(true + 1, true, 3)
    with pytest.raises(ValueError, match="2 dates"):
        change_scores(true[:, :1], true[:, :1], 3)


def test_shape_errors():
    true, mask = data()
    with pytest.raises(ValueError, match="mask"):
        psnr(true, true, mask[:, 0])
    with pytest.raises(ValueError, match="nothing to score"):
        psnr(true, true, torch.zeros_like(mask))
    with pytest.raises(ValueError, match=r"\(S, B, T, C, H, W\)"):
        crps_ensemble(true, true, mask)

"""Calibrated uncertainty: the scores that judge it, the fit that makes it, the checkpoint that
keeps it, the warnings (an uncalibrated spread, a model worse than linear interpolation)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

from sciflow.datasets.sentinel import generate_cube
from sciflow.domains.remote_sensing import (
    apply_to_cube,
    build_network,
    evaluate,
    hide_dates,
    load,
    predict_series,
)
from sciflow.domains.remote_sensing.calibration import (
    Calibration,
    UncalibratedSpreadWarning,
    _fit_band,
    fit_calibration,
    gap_days,
)
from sciflow.domains.remote_sensing.evaluation import WorseThanBaselineWarning
from sciflow.domains.remote_sensing.holdout import make_holdout
from sciflow.domains.remote_sensing.uncertainty import crps_gaussian, uncertainty_scores
from sciflow.errors import InputError


@pytest.fixture(scope="module")
def model(tiny_series, untrained_model):
    return untrained_model(tiny_series(3))


def _without_truth(series):
    return dataclasses.replace(series, truth=None)


def test_gap_days_is_the_time_to_the_nearest_given_date():
    given = torch.tensor([True, False, False, True, False]).reshape(1, 5, 1, 1)
    days = torch.tensor([[0.0, 10.0, 25.0, 30.0, 50.0]])
    np.testing.assert_allclose(gap_days(given, days).flatten().numpy(), [0, 10, 5, 0, 20])
    assert float(gap_days(torch.zeros_like(given), days).max()) == 365.0


def test_gaussian_crps_matches_a_large_ensemble_and_scores_are_calibrated_for_true_sigma():
    g = torch.Generator().manual_seed(0)
    mu, sigma = torch.zeros(4000, dtype=torch.float64), torch.full((4000,), 0.5, dtype=torch.float64)
    y = torch.randn(4000, generator=g, dtype=torch.float64) * 0.5
    members = torch.randn(400, 4000, generator=g, dtype=torch.float64) * 0.5
    sorted_m = members.sort(0).values  # empirical CRPS = E|X - y| - E|X - X'| / 2
    n = members.shape[0]
    w = (2 * torch.arange(1, n + 1, dtype=torch.float64) - n - 1)[:, None]
    empirical = (members - y).abs().mean(0) - (w * sorted_m).sum(0) / n**2
    assert torch.allclose(crps_gaussian(mu, sigma, y).mean(), empirical.mean(), rtol=0.02)
    assert torch.equal(crps_gaussian(mu, torch.zeros_like(mu), y), y.abs())
    shape = (1, 1, 1, 40, 100)
    sc = uncertainty_scores(mu.reshape(shape), sigma.reshape(shape), y.reshape(shape),
                            torch.ones(1, 1, 40, 100, dtype=torch.bool))
    assert abs(sc.spread_skill - 1) < 0.05 and sc.values == 4000
    for nominal, observed in sc.coverage:
        assert abs(observed - nominal) < 0.03
    too_small = uncertainty_scores(mu.reshape(shape), sigma.reshape(shape) / 40,
                                   y.reshape(shape), torch.ones(1, 1, 40, 100, dtype=torch.bool))
    assert too_small.spread_skill < 0.05 and too_small.coverage[-1][1] < 0.2


def test_the_fit_recovers_a_known_error_model():
    """errors ~ N(0, (a s)^2 + (b0 + b1 g / 30)^2): maximum likelihood finds a, b0, b1."""
    g = torch.Generator().manual_seed(1)
    n = 60_000
    s = torch.rand(n, generator=g, dtype=torch.float64) * 0.01
    gap = torch.rand(n, generator=g, dtype=torch.float64) * 90
    a, b0, b1 = 3.0, 0.004, 0.003
    sigma = torch.sqrt((a * s) ** 2 + (b0 + b1 * gap / 30) ** 2)
    err = torch.randn(n, generator=g, dtype=torch.float64) * sigma
    fit = _fit_band(s, gap, err)
    np.testing.assert_allclose(fit, (a, b0, b1), rtol=0.1)


def test_calibration_round_trips_through_a_checkpoint_and_checks_itself(model, tmp_path):
    cal = Calibration(bands=model.config.bands, params={"reconstruction": ((2.0, 0.01, 0.002),) * 4},
                      fitted_on="test", skill={"reconstruction": (0.3, 1.0)})
    assert Calibration.from_dict(cal.to_dict()) == cal
    spread = torch.full((1, 2, 4, 1, 1), 0.01)
    gap = torch.tensor([0.0, 30.0]).reshape(1, 2, 1, 1)
    std = cal.apply("reconstruction", spread, gap)
    np.testing.assert_allclose(std[0, :, 0, 0, 0].numpy(),
                               [math.hypot(0.02, 0.01), math.hypot(0.02, 0.012)], rtol=1e-5)
    path = dataclasses.replace(model, calibration=cal).save(tmp_path / "cal.pt")
    back = load(path)
    assert back.calibration == cal and back.checkpoint == str(path) and back.digest
    with pytest.raises(InputError, match="one \\(a, b0, b1\\)"):
        Calibration(bands=model.config.bands,
                    params={"reconstruction": ((1.0, -1.0, 0.0),) * 4},
                    fitted_on="", skill={})
    with pytest.raises(InputError, match="covers"):
        cal.apply("forecasting", spread, gap)


@pytest.mark.parametrize("truth", [True, False])
def test_fit_calibration_widens_an_underdispersed_spread(model, tiny_series, truth):
    """An untrained model's members are identical (spread 0): the fit puts the error into the
    gap term and the calibrated spread matches the error on held-out series."""
    fit_on = tiny_series(3, seed=1)
    cal = fit_calibration(model, fit_on if truth else _without_truth(fit_on),
                          tasks=("reconstruction",),
                          samples=2, steps=1, drop_dates=1)
    before, after = cal.skill["reconstruction"]
    assert before < 0.05 and 0.5 < after < 2
    assert ("clear_reflectance" if truth else "own clear pixels") in cal.fitted_on
    calibrated = dataclasses.replace(model, calibration=cal)
    test = tiny_series(3, seed=2)
    hold = make_holdout(test, "reconstruction", drop_dates=1,
                        generator=torch.Generator().manual_seed(0))
    pred = predict_series(calibrated, hold.series, "reconstruction", samples=2, steps=1)
    mask = pred.target & hold.known
    scores = uncertainty_scores(pred.reflectance, pred.reflectance_std, hold.truth, mask)
    assert 0.5 < scores.spread_skill < 2
    assert bool((pred.reflectance_std[pred.given[:, :, None].expand_as(pred.spread)] == 0).all())


def test_self_supervised_holdout_hides_clear_pixels_under_the_next_dates_clouds(tiny_series):
    s = _without_truth(tiny_series(2))
    hold = make_holdout(s, "cloud_removal")
    hidden = s.clear & ~hold.series.clear
    expect = s.clear & torch.roll(s.available & ~s.clear, -1, dims=1)
    assert torch.equal(hidden, expect) and bool(hidden.any())
    assert torch.equal(hold.known, s.clear) and hold.source == "observations"


def test_uncalibrated_cube_outputs_warn_and_calibrated_ones_do_not(model, tiny_data):
    cube = generate_cube(tiny_data, seed=5)
    with pytest.warns(UncalibratedSpreadWarning, match="sciflow rs calibrate"):
        apply_to_cube(model, cube, "reconstruction", samples=2, steps=1)
    cal = Calibration(bands=model.config.bands,
                      params={"reconstruction": ((1.0, 0.01, 0.0),) * 4},
                      fitted_on="a test", skill={"reconstruction": (0.1, 1.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncalibratedSpreadWarning)
        out = apply_to_cube(dataclasses.replace(model, calibration=cal), cube, "reconstruction",
                            samples=2, steps=1)
    assert "calibrated" in out.attrs["sciflow_uncertainty"]
    filled = out.filled.values[:, None].repeat(4, 1)
    np.testing.assert_allclose(out.reflectance_std.values[filled], 0.01, rtol=1e-5)


def test_a_model_worse_than_linear_interpolation_is_flagged(model, tiny_series):
    """The untrained model is linear interpolation (no warning); scrambling its correction head
    makes it worse (a warning, and a line in the evaluation)."""
    series, _ = hide_dates(tiny_series(2, seed=3), 1, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", WorseThanBaselineWarning)
        level = evaluate(model, series, "reconstruction", samples=1, steps=1)
    assert level.warnings == ()
    bad = dataclasses.replace(model, net=build_network(model.config).eval())
    torch.manual_seed(1)
    with torch.no_grad():
        for p in bad.net.net.pixel_net[-1].parameters():
            p.normal_(0, 0.5)
    with pytest.warns(WorseThanBaselineWarning, match="worse than linear interpolation"):
        worse = evaluate(bad, series, "reconstruction", samples=1, steps=1)
    assert len(worse.warnings) == 1 and "RMSE" in worse.warnings[0]
    assert worse.to_dict()["warnings"] == list(worse.warnings)
    assert worse.uncertainty is not None and worse.uncertainty.values > 0

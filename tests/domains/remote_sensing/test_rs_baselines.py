"""Per-pixel baselines: exactness on data they can represent, what they read, fallbacks."""

from __future__ import annotations

import pytest
import torch

from sciflow.domains.remote_sensing.baselines import (
    CentroidClassifier,
    Climatology,
    closest_observation,
    last_observation,
    linear_interpolation,
    persistence,
)


def line_data(b=2, t=7, c=3, h=4, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    days = torch.cumsum(torch.rand(b, t, generator=g, dtype=torch.float64) * 20 + 1, 1)
    slope = torch.randn(b, 1, c, h, w, generator=g, dtype=torch.float64)
    icept = torch.randn(b, 1, c, h, w, generator=g, dtype=torch.float64)
    values = icept + slope * days[:, :, None, None, None]
    given = torch.rand(b, t, h, w, generator=g) < 0.5
    given[:, 0] = True
    given[:, -1] = True
    return values, given, days


def test_linear_interpolation_is_exact_for_linear_series_and_keeps_given():
    values, given, days = line_data()
    out = linear_interpolation(values * given[:, :, None], given, days)
    torch.testing.assert_close(out, values)


def test_last_and_closest_observation_pick_the_right_date():
    t = 5
    values = torch.arange(t, dtype=torch.float64).reshape(1, t, 1, 1, 1).expand(1, t, 1, 1, 2)
    given = torch.tensor([[False, True, False, False, True]])[:, :, None, None].expand(1, t, 1, 2)
    days = torch.tensor([[0.0, 10.0, 12.0, 19.0, 20.0]])
    last = last_observation(values * given[:, :, None], given, days)[0, :, 0, 0, 0]
    assert last.tolist() == [1, 1, 1, 1, 4]  # before the first: the first one
    close = closest_observation(values * given[:, :, None], given, days)[0, :, 0, 0, 0]
    assert close.tolist() == [1, 1, 1, 4, 4]
    assert persistence is last_observation


def test_pixels_without_observation_fall_back_to_the_series_mean():
    values, given, days = line_data(b=2)
    given[:, :, 0, 0] = False
    obs = values * given[:, :, None]
    for fn in (linear_interpolation, closest_observation, last_observation):
        out = fn(obs, given, days)
        m = given[:, :, None].to(values.dtype)
        mean = (obs * m).sum((1, 3, 4)) / m.sum((1, 3, 4))
        torch.testing.assert_close(out[:, 0, :, 0, 0], mean)
    with pytest.raises(ValueError, match="no clear"):
        linear_interpolation(obs, torch.zeros_like(given), days)
    with pytest.raises(TypeError, match="bool"):
        linear_interpolation(obs, given.float(), days)


def test_climatology_and_centroids():
    b, t, c, h, w = 2, 12, 2, 3, 3
    doy = torch.arange(1, 366, 30.5)[:t].repeat(b, 1)
    month_level = torch.arange(t, dtype=torch.float32)
    truth = month_level.reshape(1, t, 1, 1, 1).expand(b, t, c, h, w).clone()
    clim = Climatology.fit(truth, doy)
    torch.testing.assert_close(clim.monthly[:, 0], month_level)
    assert clim.predict(doy, (b, t, c, h, w)).shape == (b, t, c, h, w)
    labels = torch.zeros(b, t, h, w, dtype=torch.long)
    labels[..., 0] = 1
    spectra = truth.clone()
    spectra[..., 0] += 100.0  # class 1 is far brighter
    clf = CentroidClassifier.fit(spectra, labels, doy, n_classes=3)
    assert torch.equal(clf.predict(spectra, doy), labels)
    assert not bool(clf.seen[2])  # an unseen class is never predicted

"""W1 in 1-D, the rounding-error test against a null, and the same-noise deviation bound."""

import pytest
import torch
from scipy.stats import wasserstein_distance

from sciflow.metrics import wasserstein1
from sciflow.precision.wasserstein import (
    rounding_error_test,
    same_noise_deviation,
    wasserstein1_1d,
)


def test_shift_and_equal_sizes() -> None:
    a = torch.randn(500, dtype=torch.float64)
    assert wasserstein1_1d(a, a + 0.25).item() == pytest.approx(0.25)
    assert wasserstein1_1d(a, a[torch.randperm(500)]).item() == 0.0


@pytest.mark.parametrize(("n", "m"), [(40, 40), (37, 91), (5, 2)])
def test_matches_scipy_for_any_sample_sizes(n: int, m: int) -> None:
    g = torch.Generator().manual_seed(n * m)
    a = torch.randn(n, generator=g, dtype=torch.float64)
    b = 0.5 + 2 * torch.randn(m, generator=g, dtype=torch.float64)
    assert wasserstein1_1d(a, b).item() == pytest.approx(wasserstein_distance(a, b), rel=1e-12)


def test_per_grid_point_along_any_sample_axis() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 30, 5, generator=g, dtype=torch.float64)  # (ny, time, nx)
    b = torch.randn(4, 45, 5, generator=g, dtype=torch.float64)
    w = wasserstein1_1d(a, b, dim=1)
    assert w.shape == (4, 5)
    assert w[2, 3].item() == pytest.approx(wasserstein_distance(a[2, :, 3], b[2, :, 3]))
    with pytest.raises(ValueError, match="must agree on every axis"):
        wasserstein1_1d(a, b[:3], dim=1)


def test_rounding_error_ratio_separates_a_bias_from_the_null() -> None:
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    nulls = [torch.randn(2000, 3, generator=g, dtype=torch.float64) for _ in range(4)]
    same = rounding_error_test(torch.randn(2000, 3, generator=g, dtype=torch.float64), ref, nulls)
    scalar = rounding_error_test(ref[:, 0], ref[:, 1], [n[:, 0] for n in nulls])
    assert scalar.w1.shape == () and scalar.null_each.shape == (4,)
    biased = rounding_error_test(ref + 0.5, ref, nulls)
    assert same.w1.shape == same.null.shape == (3,) and same.null_each.shape == (4,)
    assert 0.3 < same.ratio < 3.0
    assert biased.ratio > 5 and not biased.indistinguishable and biased.limit >= 1.0
    assert same.limit >= 1.0
    with pytest.raises(ValueError, match="null_runs is empty"):
        rounding_error_test(ref, ref, [])


def test_same_noise_deviation_bounds_w1_from_above() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    y = x + 0.1 * torch.randn(200, 2, generator=g, dtype=torch.float64)
    dev = same_noise_deviation(y, x)
    assert wasserstein1(x, y) <= dev + 1e-12
    assert dev == pytest.approx((y - x).norm(dim=1).mean().item())
    with pytest.raises(ValueError, match="same samples"):
        same_noise_deviation(x, y[:10])

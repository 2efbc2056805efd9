"""Metrics: exact Wasserstein values, orderings between distances, kernel and energy identities,
and Kabsch RMSD invariances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from sciflow.metrics import (
    energy_distance,
    kabsch_rmsd,
    mean_l2,
    mmd_rbf,
    sliced_wasserstein,
    wasserstein1,
    wasserstein2,
)

DTYPES = [torch.float32, torch.float64]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rotation(g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# ------------------------------------------------------------------ Wasserstein


@pytest.mark.parametrize("dtype", DTYPES)
def test_w2_of_a_shifted_copy_is_the_shift(dtype: torch.dtype) -> None:
    g = _gen(0)
    x = torch.randn(40, 3, generator=g, dtype=dtype)
    m = torch.tensor([0.3, -1.2, 2.0], dtype=dtype)
    y = x + m
    shift = float((y - x).double().mean(0).norm())  # the shift as stored in this dtype
    assert wasserstein2(x, y) == pytest.approx(shift, rel=1e-6)
    assert wasserstein1(x, y) == pytest.approx(shift, rel=1e-6)
    assert wasserstein2(x, x) == pytest.approx(0.0, abs=1e-12)


def test_w2_equals_brute_force_and_w1_le_w2() -> None:
    g = _gen(1)
    for _ in range(3):
        x = torch.randn(6, 2, generator=g, dtype=torch.float64)
        y = torch.randn(6, 2, generator=g, dtype=torch.float64) * 2
        d = torch.cdist(x, y)
        best2 = min(
            float(d[list(p), range(6)].square().mean()) for p in itertools.permutations(range(6))
        )
        best1 = min(float(d[list(p), range(6)].mean()) for p in itertools.permutations(range(6)))
        assert wasserstein2(x, y) == pytest.approx(math.sqrt(best2), rel=1e-10)
        assert wasserstein1(x, y) == pytest.approx(best1, rel=1e-10)
    for seed in range(5):
        g = _gen(10 + seed)
        x = torch.randn(50, 4, generator=g)
        y = torch.randn(37, 4, generator=g) ** 3  # unequal sizes, different law
        assert wasserstein1(x, y) <= wasserstein2(x, y) + 1e-9


def test_metrics_accept_numpy_and_torch_alike() -> None:
    g = _gen(2)
    x = torch.randn(30, 2, generator=g)
    y = torch.randn(25, 2, generator=g) + 1
    for fn in (wasserstein1, wasserstein2, sliced_wasserstein, mmd_rbf, energy_distance):
        assert fn(x, y) == pytest.approx(fn(x.numpy(), y.numpy()), rel=1e-12)
        assert isinstance(fn(x, y), float)
    # 1-D input reads as D = 1.
    assert wasserstein1(x[:, 0], y[:, 0]) == pytest.approx(
        scipy.stats.wasserstein_distance(x[:, 0].numpy(), y[:, 0].numpy()), rel=1e-9
    )


# ------------------------------------------------------------------ sliced Wasserstein


def test_sliced_wasserstein_is_exact_in_1d_and_bounded_by_w2() -> None:
    g = _gen(3)
    u = torch.randn(40, generator=g, dtype=torch.float64)
    v = torch.randn(23, generator=g, dtype=torch.float64) * 2 + 1  # n != m
    # In 1-D every direction is +-1: the sliced distance is the exact W_p.
    assert sliced_wasserstein(u, v, p=1, n_projections=8) == pytest.approx(
        scipy.stats.wasserstein_distance(u.numpy(), v.numpy()), rel=1e-10
    )
    assert sliced_wasserstein(u, v, p=2, n_projections=8) == pytest.approx(
        wasserstein2(u, v), rel=1e-10
    )
    x = torch.randn(60, 3, generator=g)
    y = torch.randn(45, 3, generator=g) * torch.tensor([3.0, 0.5, 1.0]) + 1
    sw = sliced_wasserstein(x, y, seed=7)
    assert sw == sliced_wasserstein(x, y, seed=7)  # seeded, so deterministic
    assert sw != sliced_wasserstein(x, y, seed=8)
    assert 0 < sw <= wasserstein2(x, y)  # projections are 1-Lipschitz
    assert sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ MMD and energy


@pytest.mark.parametrize("dtype", DTYPES)
def test_mmd_zero_for_identical_positive_otherwise(dtype: torch.dtype) -> None:
    g = _gen(4)
    x = torch.randn(50, 2, generator=g, dtype=dtype)
    y = torch.randn(40, 2, generator=g, dtype=dtype) + 0.5
    assert mmd_rbf(x, x) == 0.0
    assert mmd_rbf(x, y) > 0
    assert mmd_rbf(x, y) == pytest.approx(mmd_rbf(y, x), rel=1e-12)
    # Unbiased estimate of two draws from one law is near zero and may be negative.
    z = torch.randn(50, 2, generator=g, dtype=dtype)
    assert abs(mmd_rbf(x, z, unbiased=True)) < mmd_rbf(x, y, unbiased=True)


def test_mmd_hand_computed_value() -> None:
    x = np.array([[0.0]])
    y = np.array([[1.0]])
    # One point each: MMD^2 = k(0,0) + k(1,1) - 2 k(0,1) = 2 - 2 exp(-gamma).
    assert mmd_rbf(x, y, gammas=(0.5,)) == pytest.approx(2 - 2 * math.exp(-0.5), rel=1e-14)
    expected = np.mean([2 - 2 * math.exp(-g) for g in (2.0, 0.1)])
    assert mmd_rbf(x, y, gammas=(2.0, 0.1)) == pytest.approx(expected, rel=1e-14)
    # Unbiased with two points a set, x = {0, 2}, y = {1, 3}: within-set off-diagonal terms only.
    xs, ys = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    k = lambda d: math.exp(-d * d)
    unbiased = k(2) + k(2) - 2 * np.mean([k(1), k(3), k(1), k(1)])
    assert mmd_rbf(xs, ys, gammas=(1.0,), unbiased=True) == pytest.approx(unbiased, rel=1e-14)


def test_energy_distance_matches_scipy_in_1d_and_is_invariant() -> None:
    g = _gen(5)
    u = torch.randn(35, generator=g, dtype=torch.float64)
    v = torch.randn(20, generator=g, dtype=torch.float64) * 1.5 + 0.3
    assert energy_distance(u, v) == pytest.approx(
        scipy.stats.energy_distance(u.numpy(), v.numpy()), rel=1e-10
    )
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randn(30, 3, generator=g, dtype=torch.float64) + torch.tensor(
        [1.0, 0.0, 0.0], dtype=torch.float64
    )
    d = energy_distance(x, y)
    assert energy_distance(x, x) == 0.0 and d > 0
    assert energy_distance(y, x) == pytest.approx(d, rel=1e-12)
    rot, shift = _rotation(g), torch.tensor([5.0, -2.0, 1.0], dtype=torch.float64)
    assert energy_distance(x @ rot.T + shift, y @ rot.T + shift) == pytest.approx(d, rel=1e-10)
    # Triangle inequality (it is a metric on distributions).
    z = torch.randn(25, 3, generator=g, dtype=torch.float64) * 2
    assert d <= energy_distance(x, z) + energy_distance(z, y) + 1e-12


# ------------------------------------------------------------------ RMSD


@pytest.mark.parametrize("dtype", DTYPES)
def test_kabsch_rmsd_invariant_to_moving_one_input(dtype: torch.dtype) -> None:
    g = _gen(6)
    x = torch.randn(12, 3, generator=g, dtype=dtype)
    y = x + 0.3 * torch.randn(12, 3, generator=g, dtype=dtype)
    base = kabsch_rmsd(x, y)
    assert base.shape == (1,) and base.dtype == torch.float64
    rot = _rotation(g).to(dtype)
    moved = x @ rot.T + torch.tensor([3.0, -1.0, 2.0], dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert torch.allclose(kabsch_rmsd(moved, y), base, atol=tol)
    assert torch.allclose(kabsch_rmsd(x, y @ rot.T - 4.0), base, atol=tol)
    assert float(kabsch_rmsd(moved, x)) == pytest.approx(0.0, abs=10 * tol)
    # Symmetric, and no better than the plain RMSD of the given poses.
    assert torch.allclose(kabsch_rmsd(y, x), base, atol=tol)
    assert float(base) <= float((x - y).double().square().sum(1).mean().sqrt()) + tol


def test_kabsch_rmsd_hand_computed_and_mirror() -> None:
    # Centred: x = (+-1, 0, 0), y = (+-2, 0, 0) after any rotation: RMSD = 1.
    x = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    y = torch.tensor([[5.0, 5.0, 5.0], [5.0, 5.0, 9.0]])
    assert float(kabsch_rmsd(x, y)) == pytest.approx(1.0, rel=1e-6)
    # A square vs the same square: 0; vs a square of side 2: each corner is off by sqrt(2)/2.
    sq = torch.tensor([[1.0, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]], dtype=torch.float64)
    assert float(kabsch_rmsd(sq, sq @ _rotation(_gen(7)).T)) == pytest.approx(0.0, abs=1e-12)
    assert float(kabsch_rmsd(sq, 2 * sq)) == pytest.approx(math.sqrt(2), rel=1e-12)
    # A chiral tetrahedron and its mirror image are not superposable.
    tet = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=torch.float64)
    mirror = tet * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert float(kabsch_rmsd(tet, mirror)) > 0.3


def test_kabsch_rmsd_per_graph_on_ragged_batches() -> None:
    g = _gen(8)
    sizes = [5, 3, 8]
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    y = torch.randn(16, 3, generator=g, dtype=torch.float64)
    per_graph = kabsch_rmsd(x, y, batch)
    assert per_graph.shape == (3,)
    for b in range(3):
        rows = batch == b
        assert float(per_graph[b]) == pytest.approx(float(kabsch_rmsd(x[rows], y[rows])), rel=1e-12)
    assert torch.allclose(kabsch_rmsd(x.numpy(), y.numpy(), batch.numpy()), per_graph)
    w = torch.ones(16, dtype=torch.float64)
    assert torch.allclose(kabsch_rmsd(x, y, batch, weights=w), per_graph)


def test_mean_l2() -> None:
    assert mean_l2(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[3.0, 4.0], [1.0, 1.0]])) == 2.5


# ------------------------------------------------------------------ bad inputs


def test_metrics_reject_bad_input() -> None:
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="D=2 but y has D=3"):
        wasserstein2(x, torch.randn(5, 3))
    with pytest.raises(ValueError, match="empty"):
        mmd_rbf(torch.zeros(0, 2), x)
    with pytest.raises(ValueError, match="NaN"):
        energy_distance(x, torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        wasserstein1([[0.0, 1.0]], x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gammas"):
        mmd_rbf(x, x, gammas=(1.0, -1.0))
    with pytest.raises(ValueError, match="at least 2"):
        mmd_rbf(x[:1], x, unbiased=True)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(ValueError, match="corresponding atoms"):
        kabsch_rmsd(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="batch"):
        kabsch_rmsd(torch.randn(4, 3), torch.randn(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="pairs rows"):
        mean_l2(torch.randn(4, 3), torch.randn(5, 3))

"""Linear forward operators: adjoints are adjoint, projections are nearest consistent points."""

from __future__ import annotations

import pytest
import torch

from sciflow.operators import Blur, Downsample, Mask, MatrixOperator, project

G = torch.Generator().manual_seed(0)


def operators():
    mask = torch.rand(1, 2, 8, 8, generator=G) < 0.4
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=torch.float64) / 16
    matrix = torch.randn(40, 128, generator=G, dtype=torch.float64)
    return {"mask": Mask(mask), "downsample": Downsample(2), "blur": Blur(kernel, rcond=1e-2),
            "matrix": MatrixOperator(matrix, sample_shape=(2, 8, 8))}


@pytest.mark.parametrize("name", sorted(operators()))
def test_the_adjoint_satisfies_the_inner_product_identity(name):
    op = operators()[name]
    x = torch.randn(3, 2, 8, 8, generator=G, dtype=torch.float64)
    y = torch.randn(op.forward(x).shape, generator=G, dtype=torch.float64)
    lhs = (op.forward(x) * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-10, atol=1e-10)
    assert torch.equal(op(x), op.forward(x))


@pytest.mark.parametrize("name", ["mask", "downsample", "matrix", "landweber"])
def test_projection_meets_the_measurement_and_moves_least(name):
    op = operators()["matrix" if name == "landweber" else name]
    truth = torch.randn(3, 2, 8, 8, generator=G, dtype=torch.float64)
    y = op.forward(truth)
    x = torch.randn(truth.shape, generator=G, dtype=torch.float64)
    if name == "landweber":  # the generic route of an operator without a closed-form projection
        plain = type("Plain", (), {"forward": op.forward, "adjoint": op.adjoint})()
        p = project(plain, x, y, steps=5000, tol=1e-10)
        exact = op.project(x, y)
        assert torch.allclose(p, exact, atol=1e-6)
    else:
        p = project(op, x, y)
    assert torch.allclose(op.forward(p), y, atol=1e-8)
    # nearest: the correction is orthogonal to the null space, so any consistent point is farther
    other = p + (truth - op.project(truth, y)) + 0.3 * (truth - p)
    other = op.project(other, y)
    assert (p - x).norm() <= (other - x).norm() + 1e-9
    assert torch.allclose(op.project(p, y), p, atol=1e-10)  # idempotent


def test_blur_projection_is_consistent_on_the_measured_frequencies():
    op = operators()["blur"]
    truth = torch.randn(2, 2, 8, 8, generator=G, dtype=torch.float64)
    x = torch.zeros_like(truth)
    p = op.project(x, op.forward(truth))
    assert torch.allclose(op.forward(p), op.forward(truth), atol=1e-3 * float(truth.abs().max()))
    lossless = Blur(torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.0]],
                                 dtype=torch.float64), rcond=0.0)
    assert torch.allclose(lossless.project(x, lossless.forward(truth)), truth, atol=1e-10)


def test_a_mask_keeps_observed_entries_bit_exactly():
    mask = torch.tensor([[True, False, True]])
    op = Mask(mask)
    y = torch.tensor([[1.5, 0.0, -2.25]])
    p = op.project(torch.randn(4, 3), y.expand(4, 3))
    assert torch.equal(p[:, 0], torch.full((4,), 1.5)) and torch.equal(p[:, 2], torch.full((4,), -2.25))


def test_bad_operator_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="only 0 and 1"):
        Mask(torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="divisible by 3"):
        Downsample(3).forward(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="odd sizes"):
        Blur(torch.ones(2, 2))
    with pytest.raises(ValueError, match="takes samples of 128 values"):
        operators()["matrix"].forward(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="holds 6 values but the matrix takes D=128"):
        MatrixOperator(torch.zeros(3, 128), sample_shape=(2, 3))
    with pytest.raises(ValueError, match="y has shape"):
        project(Downsample(2), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))

"""Embeddings: shapes, the values their formulas fix, and clear errors for bad input."""

import math

import pytest
import torch

from sciflow.nn.embeddings import (
    CosineCutoff,
    ElementEmbedding,
    GaussianFourierTimeEmbedding,
    GaussianRBF,
    SinusoidalTimeEmbedding,
    make_time_embedding,
)


@pytest.mark.parametrize("kind", ["sinusoidal", "fourier"])
def test_time_embeddings_have_unit_norm_per_frequency_and_separate_times(kind):
    emb = make_time_embedding(kind, 16)
    t = torch.tensor([0.0, 0.001, 0.5, 1.0])
    e = emb(t)
    assert e.shape == (4, 16)
    # sin^2 + cos^2 = 1 for each of the 8 frequencies
    torch.testing.assert_close((e**2).sum(-1), torch.full((4,), 8.0))
    distances = torch.cdist(e, e)
    assert bool((distances + torch.eye(4) > 1e-3).all()), "distinct times must embed apart"


def test_sinusoidal_embedding_matches_its_formula():
    emb = SinusoidalTimeEmbedding(4, max_period=100.0, scale=10.0)
    t = torch.tensor([0.3])
    w = torch.tensor([1.0, 100.0**-0.5])
    expected = torch.cat([torch.sin(10 * 0.3 * w), torch.cos(10 * 0.3 * w)])
    torch.testing.assert_close(emb(t)[0], expected)


def test_fourier_embedding_learnable_frequencies_get_gradients():
    emb = GaussianFourierTimeEmbedding(8, learnable=True)
    emb(torch.rand(5)).sum().backward()
    assert emb.freqs.grad is not None and emb.freqs.grad.abs().sum() > 0


@pytest.mark.parametrize("dim", [0, 3, 7])
def test_time_embedding_rejects_odd_dims(dim):
    with pytest.raises(ValueError, match="even integer"):
        SinusoidalTimeEmbedding(dim)


def test_unknown_time_embedding_is_named():
    with pytest.raises(ValueError, match="'wavelet'"):
        make_time_embedding("wavelet", 8)


def test_gaussian_rbf_peaks_at_its_centres():
    rbf = GaussianRBF(5, stop=4.0)
    e = rbf(torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(torch.diagonal(e), torch.ones(5))
    assert int(e[2].argmax()) == 2
    # neighbouring centres one spacing away: exp(-1/2)
    torch.testing.assert_close(e[2, 1], torch.tensor(math.exp(-0.5)))


def test_cosine_cutoff_is_one_at_zero_zero_beyond_and_smooth():
    cut = CosineCutoff(2.0)
    d = torch.linspace(0.0, 3.0, 301, dtype=torch.float64, requires_grad=True)
    f = cut(d)
    (grad,) = torch.autograd.grad(f.sum(), d)
    f = f.detach()
    assert float(f[0]) == 1.0 and bool((f[200:] == 0).all())
    assert bool((f[1:] <= f[:-1]).all()), "the envelope must not increase"
    # the slope -pi/(2 r_c) sin(pi d / r_c) fades to zero where edges leave the graph
    assert abs(float(grad[199])) < 0.02 * abs(float(grad[100]))


def test_element_embedding_rejects_out_of_range_and_float_input():
    emb = ElementEmbedding(8, max_z=10)
    assert emb(torch.tensor([1, 6, 8])).shape == (3, 8)
    with pytest.raises(ValueError, match=r"\[1, 10\]"):
        emb(torch.tensor([1, 11]))
    with pytest.raises(ValueError, match=r"\[0, 6\]"):
        emb(torch.tensor([0, 6]))
    with pytest.raises(TypeError, match="integer"):
        emb(torch.tensor([1.0, 6.0]))

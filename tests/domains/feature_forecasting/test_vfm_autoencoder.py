"""Per-token compressors: exact recovery where it must hold, standardised latents, clear errors."""

import pytest
import torch

from sciflow.domains.feature_forecasting.autoencoder import (
    ChannelVAE,
    PCACompressor,
    RawFeatures,
    fit_compressor,
    from_tokens,
    make_compressor,
    to_tokens,
)
from sciflow.domains.feature_forecasting.metrics import reconstruction_error


def _low_rank_features(n=40, d=12, rank=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, rank, 4, 4, generator=g, dtype=dtype)
    mix = torch.randn(d, rank, generator=g, dtype=dtype)
    scale = torch.linspace(0.5, 3.0, d, dtype=dtype)[None, :, None, None]
    offset = torch.linspace(-2, 2, d, dtype=dtype)[None, :, None, None]
    return torch.einsum("dr,nrhw->ndhw", mix, z) * scale + offset


def test_tokens_round_trip_with_leading_dims():
    f = torch.randn(2, 3, 5, 4, 6)
    rows = to_tokens(f)
    assert rows.shape == (2 * 3 * 4 * 6, 5)
    assert torch.equal(from_tokens(rows, tuple(f.shape)), f)


def test_pca_recovers_a_low_rank_feature_space_exactly():
    f = _low_rank_features()
    pca = PCACompressor(12, 3).double().fit(f)
    assert reconstruction_error(pca, f) < 1e-20
    v = pca.components
    assert torch.allclose(v.T @ v, torch.eye(3, dtype=v.dtype), atol=1e-10)
    assert float(pca.explained.sum()) == pytest.approx(1.0, abs=1e-10)
    z = pca.encode(f)  # standardised latent: whitened principal components
    assert z.shape == (40, 3, 4, 4)
    assert torch.allclose(to_tokens(z).mean(0), torch.zeros(3, dtype=z.dtype), atol=1e-10)
    assert torch.allclose(to_tokens(z).std(0), torch.ones(3, dtype=z.dtype), atol=1e-10)


def test_pca_error_shrinks_with_more_components_and_leading_dims_pass_through():
    f = torch.randn(30, 10, 4, 4, generator=torch.Generator().manual_seed(1))
    errs = [reconstruction_error(PCACompressor(10, k).fit(f), f) for k in (2, 5, 10)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-10
    pca = PCACompressor(10, 5).fit(f)
    clips = f.reshape(5, 6, 10, 4, 4)
    assert torch.allclose(pca.encode(clips).reshape(30, 5, 4, 4), pca.encode(f), atol=1e-6)


def test_raw_features_round_trip_exactly():
    f = _low_rank_features(dtype=torch.float64)
    raw = RawFeatures(12).double().fit(f)
    assert raw.latent_dim == 12
    assert torch.allclose(raw.decode(raw.encode(f)), f, atol=1e-12)
    assert torch.allclose(to_tokens(raw.encode(f)).std(0), torch.ones(12, dtype=f.dtype))


def test_vae_learns_and_its_latents_are_standardised():
    f = _low_rank_features(n=60, dtype=torch.float32)
    vae = ChannelVAE(12, 3, hidden=32, beta=0.01)
    fit = vae.fit(f, steps=250, batch_size=256, lr=3e-3)
    assert fit.train.step == 250 and fit.kl > 0
    err = reconstruction_error(vae, f)
    assert err < 0.4  # well below 1, the error of predicting each channel's mean
    z = vae.encode(f)
    assert torch.equal(z, vae.encode(f))  # the posterior mean: deterministic
    rows = to_tokens(z)
    assert torch.allclose(rows.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(rows.std(0), torch.ones(3), atol=1e-3)
    assert not any(p.requires_grad for p in vae.parameters())


def test_vae_at_equal_size_beats_pca_on_a_nonlinear_manifold():
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(200, 1, 2, 2, generator=g) * 3.0  # an open arc: 1-D encodable
    f = torch.cat([torch.cos(k * angle) for k in range(1, 7)]
                  + [torch.sin(k * angle) for k in range(1, 7)], dim=1)  # a 1-D curve in 12-D
    pca = fit_compressor("pca", f, 1)
    vae = fit_compressor("vae", f, 1, steps=300, hidden=64)
    assert reconstruction_error(vae, f) < 0.5 * reconstruction_error(pca, f)


def test_compressors_refuse_bad_input():
    with pytest.raises(ValueError, match="latent_dim"):
        PCACompressor(4, 5)
    with pytest.raises(ValueError, match="unknown compressor"):
        make_compressor("jpeg", 4, 2)
    pca = PCACompressor(4, 2).fit(torch.randn(3, 4, 2, 2))
    with pytest.raises(ValueError, match=r"\(\*, 4, h, w\)"):
        pca.encode(torch.randn(3, 5, 2, 2))
    with pytest.raises(ValueError, match=r"\(\*, 2, h, w\)"):
        pca.decode(torch.randn(3, 4, 2, 2))
    with pytest.raises(ValueError, match="beta"):
        ChannelVAE(4, 2, beta=-1.0)

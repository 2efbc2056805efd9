"""Per-token compression of feature maps: a channel-wise VAE, PCA, or the raw features.

VFMF (Boduljak et al. 2025) forecasts in a small latent: every token's D-channel feature vector is
mapped to k channels by a channel-wise (per-token) VAE, keeping the token grid, and the latents are
standardised. All three compressors here share that shape contract and the pre- and
post-processing:

    x = (f - mu_f) / sd_f                (per-channel feature standardisation, fit on training data)
    z = (E(x) - mu_z) / sd_z             (per-channel latent standardisation)
    f_hat = sd_f * D(sd_z * z + mu_z) + mu_f

- :class:`ChannelVAE`: E = the posterior mean of a Gaussian VAE (MLP encoder to (mean, log var)),
  D an MLP, trained on L = (1/D) [ ||x - D(z)||^2 + beta * KL(q(z|x) || N(0, I)) ],
  z = m + s * eps (Kingma & Welling 2014; beta = 0.01 as in VFMF).
- :class:`PCACompressor`: E = projection on the top-k principal axes of x, D its transpose.
- :class:`RawFeatures`: E = D = identity (k = D): flow matching directly in feature space.

Shapes: encode (*, D, h, w) -> (*, k, h, w); decode the reverse; any leading dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sciflow.errors import InputError
from sciflow.nn.mlp import mlp
from sciflow.seeding import seed_everything
from sciflow.train import TrainConfig, Trainer, TrainResult

__all__ = [
    "FeatureStandardizer",
    "Compressor",
    "ChannelVAE",
    "PCACompressor",
    "RawFeatures",
    "COMPRESSORS",
    "make_compressor",
    "fit_compressor",
    "to_tokens",
    "from_tokens",
]


def to_tokens(f: Tensor) -> Tensor:
    """(*, D, h, w) feature maps -> (M, D) token rows, M = prod(*) * h * w."""
    if f.dim() < 3:
        raise ValueError(f"feature maps must have shape (*, D, h, w), got {tuple(f.shape)}")
    return f.movedim(-3, -1).reshape(-1, f.shape[-3])


def from_tokens(rows: Tensor, like_shape: tuple[int, ...]) -> Tensor:
    """Inverse of :func:`to_tokens` for maps of shape ``like_shape`` with rows.shape[1] channels."""
    lead, (h, w) = like_shape[:-3], like_shape[-2:]
    return rows.reshape(*lead, h, w, rows.shape[1]).movedim(-1, -3)


class FeatureStandardizer(nn.Module):
    """Per-channel standardisation x = (f - mean) / std, fit once on training tokens.

    Shapes: (*, D, h, w) <-> (*, D, h, w). ``std`` is floored at ``eps`` times its largest value
    so constant channels do not blow up.
    """

    def __init__(self, dim: int, *, eps: float = 1e-4) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, features: Tensor) -> FeatureStandardizer:
        rows = to_tokens(features).double()
        if rows.shape[1] != self.dim:
            raise ValueError(f"features have {rows.shape[1]} channels, expected {self.dim}")
        std = rows.std(dim=0)
        self.mean.copy_(rows.mean(dim=0))
        self.std.copy_(std.clamp_min(self.eps * float(std.max().clamp_min(1e-12))))
        return self

    def _shape(self, x: Tensor) -> tuple[Tensor, Tensor]:
        view = (-1, 1, 1)
        return (self.mean.to(x.device, x.dtype).reshape(view),
                self.std.to(x.device, x.dtype).reshape(view))

    def forward(self, f: Tensor) -> Tensor:
        m, s = self._shape(f)
        return (f - m) / s

    def inverse(self, x: Tensor) -> Tensor:
        m, s = self._shape(x)
        return x * s + m


class Compressor(nn.Module):
    """Base class: standardise features, map each token to k channels, standardise the latent.

    Subclasses implement ``_encode_rows`` (M, D) -> (M, k) and ``_decode_rows`` (M, k) -> (M, D)
    on standardised features, and ``fit``.
    """

    kind = "base"

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__()
        if not isinstance(feature_dim, int) or feature_dim < 1:
            raise InputError(f"feature_dim={feature_dim!r}; expected an integer >= 1")
        if not isinstance(latent_dim, int) or not 1 <= latent_dim <= feature_dim:
            raise InputError(f"latent_dim={latent_dim!r}; expected an integer in "
                             f"[1, feature_dim={feature_dim}] (the extractor's channels)")
        self.feature_dim, self.latent_dim = feature_dim, latent_dim
        self.features = FeatureStandardizer(feature_dim)
        self.latents = FeatureStandardizer(latent_dim)

    def _encode_rows(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _decode_rows(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def _check(self, x: Tensor, channels: int, what: str) -> None:
        if x.dim() < 3 or x.shape[-3] != channels:
            raise ValueError(f"{what} must have shape (*, {channels}, h, w) for this "
                             f"{self.kind} compressor, got {tuple(x.shape)}")

    def encode(self, features: Tensor) -> Tensor:
        """Standardised latent of feature maps: (*, D, h, w) -> (*, k, h, w)."""
        self._check(features, self.feature_dim, "features")
        rows = self._encode_rows(to_tokens(self.features(features)))
        shape = (*features.shape[:-3], self.latent_dim, *features.shape[-2:])
        return self.latents(from_tokens(rows, shape))

    def decode(self, latents: Tensor) -> Tensor:
        """Feature maps (in the extractor's units) of standardised latents: (*, k, h, w) -> (*, D, h, w)."""
        self._check(latents, self.latent_dim, "latents")
        rows = self._decode_rows(to_tokens(self.latents.inverse(latents)))
        shape = (*latents.shape[:-3], self.feature_dim, *latents.shape[-2:])
        return self.features.inverse(from_tokens(rows, shape))

    @torch.no_grad()
    def _fit_latent_stats(self, features: Tensor, batch: int = 65536) -> None:
        x = to_tokens(self.features(features))
        rows = torch.cat([self._encode_rows(x[i:i + batch]) for i in range(0, x.shape[0], batch)])
        self.latents.fit(rows[:, :, None, None])


class RawFeatures(Compressor):
    """No compression: the latent is the standardised feature vector itself (k = D)."""

    kind = "raw"

    def __init__(self, feature_dim: int) -> None:
        super().__init__(feature_dim, feature_dim)

    def _encode_rows(self, x: Tensor) -> Tensor:
        return x

    def _decode_rows(self, z: Tensor) -> Tensor:
        return z

    def fit(self, features: Tensor) -> RawFeatures:
        """Fit the feature standardisation on (*, D, h, w) training features."""
        self.features.fit(features)
        return self


class PCACompressor(Compressor):
    """Principal components of the standardised tokens: z = x V_k, x_hat = z V_k^T.

    V_k (D, k) holds the top-k eigenvectors of the token covariance (computed in float64); the
    latent standardisation then divides each component by its standard deviation (whitening).
    """

    kind = "pca"

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__(feature_dim, latent_dim)
        self.register_buffer("components", torch.zeros(feature_dim, latent_dim))
        self.register_buffer("explained", torch.zeros(latent_dim))

    def _encode_rows(self, x: Tensor) -> Tensor:
        return x @ self.components.to(x.dtype)

    def _decode_rows(self, z: Tensor) -> Tensor:
        return z @ self.components.to(z.dtype).T

    @torch.no_grad()
    def fit(self, features: Tensor) -> PCACompressor:
        """Fit standardisation and principal axes on (*, D, h, w) training features."""
        self.features.fit(features)
        x = to_tokens(self.features(features)).double()
        x = x - x.mean(dim=0)
        cov = x.T @ x / max(x.shape[0] - 1, 1)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        top = torch.argsort(evals, descending=True)[: self.latent_dim]
        vecs = evecs[:, top]
        vecs = vecs * torch.where(vecs.sum(dim=0) < 0, -1.0, 1.0)  # a fixed sign per axis
        self.components.copy_(vecs.to(self.components.dtype))
        self.explained.copy_((evals[top] / evals.clamp_min(0).sum()).to(self.explained.dtype))
        self._fit_latent_stats(features)
        return self


@dataclass(frozen=True)
class VAEFit:
    """What fitting a :class:`ChannelVAE` did: the trainer's result and the last loss terms."""

    train: TrainResult
    reconstruction: float
    kl: float


class ChannelVAE(Compressor):
    """A per-token Gaussian VAE D -> k -> D (VFMF's channel-wise autoencoder).

    encoder: x -> (m, log s^2) by an MLP [D, hidden, hidden, 2k]; decoder an MLP [k, hidden,
    hidden, D]. :meth:`encode` uses the posterior mean m (then standardises it), so encoding is
    deterministic. Loss per token (Kingma & Welling 2014, with VFMF's small beta):

        L = (1/D) [ sum_d (x_d - D(z)_d)^2 + beta * sum_j 0.5 (m_j^2 + s_j^2 - log s_j^2 - 1) ]
    """

    kind = "vae"

    def __init__(self, feature_dim: int, latent_dim: int, *, hidden: int = 128,
                 beta: float = 0.01) -> None:
        super().__init__(feature_dim, latent_dim)
        if beta < 0:
            raise ValueError(f"beta={beta}; expected a KL weight >= 0")
        self.beta = float(beta)
        self.encoder = mlp([feature_dim, hidden, hidden, 2 * latent_dim], activation=nn.GELU)
        self.decoder = mlp([latent_dim, hidden, hidden, feature_dim], activation=nn.GELU)

    def _posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        m, logvar = self.encoder(x).chunk(2, dim=-1)
        return m, logvar.clamp(-12.0, 8.0)

    def _encode_rows(self, x: Tensor) -> Tensor:
        return self._posterior(x)[0]

    def _decode_rows(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def loss_terms(self, x: Tensor, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor]:
        """Per-batch mean reconstruction error and KL (both divided by D) of standardised rows."""
        m, logvar = self._posterior(x)
        # drawn on the CPU (the generator's device) so the noise is the same on every device
        eps = torch.randn(m.shape, generator=generator, dtype=m.dtype).to(m.device)
        z = m + torch.exp(0.5 * logvar) * eps
        recon = (self.decoder(z) - x).square().sum(dim=1).mean() / self.feature_dim
        kl = 0.5 * (m.square() + logvar.exp() - logvar - 1).sum(dim=1).mean() / self.feature_dim
        return recon, kl

    def fit(self, features: Tensor, *, steps: int = 1500, batch_size: int = 512,
            lr: float = 2e-3, seed: int = 0, progress: bool | None = False,
            device: str = "cpu") -> VAEFit:
        """Fit standardisation and the VAE on (*, D, h, w) features (random token mini-batches,
        trained on ``device``), then the latent standardisation on the posterior means. Keeps the
        EMA weights; the VAE ends on the device of ``features``."""
        self.requires_grad_(True).train()
        self.features.fit(features)
        with torch.no_grad():
            rows = to_tokens(self.features(features)).contiguous()
        last: dict[str, float] = {}

        def batch_fn(step: int, g: torch.Generator) -> Tensor:
            return rows[torch.randint(rows.shape[0], (batch_size,), generator=g)]

        gen = torch.Generator().manual_seed(seed + 1)

        def loss_fn(net: nn.Module, x: Tensor) -> tuple[Tensor, dict[str, float]]:
            recon, kl = net.loss_terms(x, gen)
            last.update(reconstruction=float(recon.detach()), kl=float(kl.detach()))
            return recon + self.beta * kl, dict(last)

        config = TrainConfig(steps=steps, lr=lr, schedule="cosine",
                             warmup_steps=min(100, steps // 10),
                             ema_decay=min(0.99, max(0.0, 1.0 - 10.0 / max(steps, 1))), seed=seed,
                             progress=progress, device=device,
                             log_every=max(steps // 10, 1))
        trainer = Trainer(self, loss_fn, config)
        result = trainer.fit(batch_fn)
        self.load_state_dict(trainer.ema_model.state_dict())
        self.to(features.device).requires_grad_(False).eval()
        self._fit_latent_stats(features)
        return VAEFit(train=result, reconstruction=last.get("reconstruction", float("nan")),
                      kl=last.get("kl", float("nan")))


COMPRESSORS: dict[str, str] = {
    "vae": "channel-wise VAE to k channels per token (VFMF)",
    "pca": "principal components of the tokens, k channels",
    "raw": "no compression: standardised features (k = D)",
}


def make_compressor(kind: str, feature_dim: int, latent_dim: int, *, hidden: int = 128,
                    beta: float = 0.01) -> Compressor:
    """An unfitted compressor by name (see :data:`COMPRESSORS`); ``raw`` ignores latent_dim."""
    if kind == "vae":
        return ChannelVAE(feature_dim, latent_dim, hidden=hidden, beta=beta)
    if kind == "pca":
        return PCACompressor(feature_dim, latent_dim)
    if kind == "raw":
        return RawFeatures(feature_dim)
    raise InputError(f"unknown compressor {kind!r}; choose from {sorted(COMPRESSORS)}")


def fit_compressor(kind: str, features: Tensor, latent_dim: int, *, steps: int = 1500,
                   seed: int = 0, hidden: int = 128, beta: float = 0.01,
                   progress: bool | None = False, device: str = "cpu") -> Compressor:
    """Build and fit a compressor on (*, D, h, w) training features; returns it in eval mode.

    ``seed`` fixes everything from the VAE's initial weights on (two processes give identical
    compressors); ``device`` is where the VAE trains.
    """
    seed_everything(seed)
    comp = make_compressor(kind, features.shape[-3], latent_dim, hidden=hidden, beta=beta)
    if isinstance(comp, ChannelVAE):
        comp.fit(features, steps=steps, seed=seed, progress=progress, device=device)
    else:
        comp.fit(features)
    return comp.requires_grad_(False).eval()

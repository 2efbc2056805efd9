"""Embeddings shared by every sciflow network: time, distances, cutoffs and chemical elements.

Each module maps a raw invariant (a time, a distance, an atomic number) to a feature vector. None of
them knows about graphs, so dense networks (``MLPVelocity``) and graph networks (EGNN, PaiNN, the
e3nn tensor-product net) draw on the same pieces.

Shapes use ``*`` for any leading batch dimensions: ``t`` (*,) -> (*, dim), ``d`` (*,) -> (*, K).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "SinusoidalTimeEmbedding",
    "GaussianFourierTimeEmbedding",
    "TimeEmbeddingKind",
    "make_time_embedding",
    "GaussianRBF",
    "CosineCutoff",
    "ElementEmbedding",
]

TimeEmbeddingKind = Literal["sinusoidal", "fourier"]


def _check_even_dim(dim: int, name: str) -> None:
    if not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"{name} must be an even integer >= 2, got {dim!r}")


class SinusoidalTimeEmbedding(nn.Module):
    """Fixed sinusoidal features of a scalar time (Vaswani et al. 2017; Ho et al. 2020, DDPM).

    emb(t) = [sin(s t w_k), cos(s t w_k)]_{k < dim/2},  w_k = max_period^(-k / (dim/2))

    ``scale`` s stretches t in [0, 1] so that the fastest frequency resolves small steps in t.

    Shapes: t (*,) -> (*, dim).
    """

    def __init__(self, dim: int, *, max_period: float = 10_000.0, scale: float = 1_000.0) -> None:
        super().__init__()
        _check_even_dim(dim, "dim")
        if max_period <= 1.0:
            raise ValueError(f"max_period must be > 1, got {max_period}")
        self.dim = dim
        self.scale = float(scale)
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
        self.register_buffer("freqs", freqs.to(torch.get_default_dtype()), persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        args = self.scale * t.to(self.freqs.dtype)[..., None] * self.freqs
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class GaussianFourierTimeEmbedding(nn.Module):
    """Random Fourier features of a scalar time (Tancik et al. 2020; Song et al. 2021, score SDE).

    emb(t) = [sin(2 pi t w_k), cos(2 pi t w_k)],  w_k ~ N(0, sigma^2) drawn once at construction

    With ``learnable=True`` the frequencies are trained as parameters.

    Shapes: t (*,) -> (*, dim).
    """

    def __init__(self, dim: int, *, sigma: float = 16.0, learnable: bool = False) -> None:
        super().__init__()
        _check_even_dim(dim, "dim")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.dim = dim
        w = torch.randn(dim // 2) * sigma
        if learnable:
            self.freqs = nn.Parameter(w)
        else:
            self.register_buffer("freqs", w)

    def forward(self, t: Tensor) -> Tensor:
        args = 2.0 * math.pi * t.to(self.freqs.dtype)[..., None] * self.freqs
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def make_time_embedding(kind: TimeEmbeddingKind, dim: int) -> nn.Module:
    """Build a time embedding by name: ``"sinusoidal"`` or ``"fourier"`` (Gaussian Fourier)."""
    if kind == "sinusoidal":
        return SinusoidalTimeEmbedding(dim)
    if kind == "fourier":
        return GaussianFourierTimeEmbedding(dim)
    raise ValueError(f"time_embedding must be 'sinusoidal' or 'fourier', got {kind!r}")


class GaussianRBF(nn.Module):
    """Gaussian radial basis expansion of distances (Schuett et al. 2017, SchNet).

    e_k(d) = exp(-gamma (d - mu_k)^2),  mu_k evenly spaced on [start, stop],
    gamma = 1 / (2 delta^2) with delta the spacing of the centres.

    Shapes: d (*,) -> (*, num).
    """

    def __init__(self, num: int, *, stop: float, start: float = 0.0, trainable: bool = False):
        super().__init__()
        if num < 1:
            raise ValueError(f"num (radial basis size) must be >= 1, got {num}")
        if stop <= start:
            raise ValueError(f"stop must exceed start, got start={start}, stop={stop}")
        centres = torch.linspace(start, stop, num)
        spacing = (stop - start) / max(num - 1, 1)
        gamma = torch.tensor(0.5 / spacing**2)
        if trainable:
            self.centres = nn.Parameter(centres)
            self.gamma = nn.Parameter(gamma)
        else:
            self.register_buffer("centres", centres)
            self.register_buffer("gamma", gamma)
        self.num = num

    def forward(self, d: Tensor) -> Tensor:
        return torch.exp(-self.gamma * (d[..., None] - self.centres) ** 2)


class CosineCutoff(nn.Module):
    """Smooth envelope that takes interactions to zero at the cutoff (Behler 2011).

    f(d) = 0.5 (cos(pi d / r_c) + 1) for d < r_c, else 0.

    f(0) = 1, f(r_c) = 0 and f'(r_c) = 0, so messages vanish continuously as an edge leaves a
    radius graph. Shapes: d (*,) -> (*,).
    """

    def __init__(self, cutoff: float) -> None:
        super().__init__()
        if cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        self.cutoff = float(cutoff)

    def forward(self, d: Tensor) -> Tensor:
        value = 0.5 * (torch.cos(math.pi * d / self.cutoff) + 1.0)
        return torch.where(d < self.cutoff, value, torch.zeros_like(value))


class ElementEmbedding(nn.Module):
    """Learned vector per chemical element, looked up by atomic number.

    Shapes: z (N,) int64 atomic numbers in [1, max_z] -> (N, dim).
    """

    def __init__(self, dim: int, *, max_z: int = 100) -> None:
        super().__init__()
        if dim < 1 or max_z < 1:
            raise ValueError(f"dim and max_z must be >= 1, got dim={dim}, max_z={max_z}")
        self.max_z = max_z
        self.table = nn.Embedding(max_z + 1, dim)

    def forward(self, z: Tensor) -> Tensor:
        if z.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"z must hold integer atomic numbers (int64), got dtype {z.dtype}")
        if z.dim() != 1:
            raise ValueError(f"z must have shape (N,), got {tuple(z.shape)}")
        if z.numel() and (int(z.min()) < 1 or int(z.max()) > self.max_z):
            raise ValueError(
                f"z holds atomic numbers in [{int(z.min())}, {int(z.max())}], expected values in "
                f"[1, {self.max_z}]; raise max_z to embed heavier elements"
            )
        return self.table(z.long())

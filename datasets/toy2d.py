"""Two-dimensional toy distributions used to test and benchmark flow matching.

The same recipes as the flow-matching literature's notebooks (torchcfm's 8 gaussians and moons),
written from their definitions: every sampler takes ``n`` and a ``torch.Generator`` and returns
(n, 2) float32 samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["eight_gaussians", "moons", "checkerboard", "TOY2D"]


def eight_gaussians(n: int, *, generator: torch.Generator | None = None, radius: float = 4.0,
                    std: float = 0.5) -> Tensor:
    """Mixture of 8 Gaussians (std ``std``) with means evenly spaced on a circle of ``radius``."""
    k = torch.randint(0, 8, (n,), generator=generator)
    angle = k.to(torch.float32) * (2 * math.pi / 8)
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + std * torch.randn(n, 2, generator=generator)


def moons(n: int, *, generator: torch.Generator | None = None, noise: float = 0.1,
          scale: float = 3.0) -> Tensor:
    """Two interleaving half circles (as scikit-learn's make_moons), centred and scaled by ``scale``."""
    upper = torch.rand(n, generator=generator) < 0.5
    theta = math.pi * torch.rand(n, generator=generator)
    x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, generator=generator)
    return scale * (pts - torch.tensor([0.5, 0.25]))


def checkerboard(n: int, *, generator: torch.Generator | None = None, size: int = 4) -> Tensor:
    """Uniform on the dark squares of a size x size checkerboard over [-size/2, size/2]^2."""
    col = torch.randint(0, size, (n,), generator=generator)
    row = torch.randint(0, size // 2, (n,), generator=generator) * 2 + col % 2
    u = torch.rand(n, 2, generator=generator)
    return torch.stack([col + u[:, 0], row + u[:, 1]], dim=1) - size / 2


TOY2D = {"8gaussians": eight_gaussians, "moons": moons, "checkerboard": checkerboard}

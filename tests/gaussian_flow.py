"""The exact velocity field of the linear path from N(0, I) to a Gaussian N(m, S).

x_t = t x1 + (1 - t) x0 ~ N(t m, C_t), C_t = t^2 S + (1 - t)^2 I, and because x_t is jointly
Gaussian with x1 - x0:  v(x, t) = E[x1 - x0 | x_t = x] = m + (t S - (1 - t) I) C_t^{-1} (x - t m).
Tests use it as a "perfectly trained" model with a closed-form answer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class GaussianTargetVelocity(torch.nn.Module):
    def __init__(self, mean: Tensor, cov: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("cov", cov)

    def forward(self, x: Tensor, t: Tensor, *, cond=None, batch=None) -> Tensor:
        d = x.shape[1]
        if batch is not None:  # graph batch: per-graph time to node rows; nodes are independent here
            t = t[batch]
        eye = torch.eye(d, dtype=x.dtype)
        tt = t.to(x.dtype)[:, None, None]
        c_t = tt**2 * self.cov + (1 - tt) ** 2 * eye
        a_t = tt * self.cov - (1 - tt) * eye
        rhs = (x - t[:, None] * self.mean)[:, :, None]
        return self.mean + (a_t @ torch.linalg.solve(c_t, rhs))[:, :, 0]

    def log_prob(self, x: Tensor) -> Tensor:
        dist = torch.distributions.MultivariateNormal(self.mean, covariance_matrix=self.cov)
        return dist.log_prob(x)


def rotated_cov(d: int, dtype=torch.float64) -> Tensor:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(d, d, generator=g, dtype=dtype)
    return a @ a.T / d + 0.2 * torch.eye(d, dtype=dtype)


__all__ = ["GaussianTargetVelocity", "rotated_cov", "math"]

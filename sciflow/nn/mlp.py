"""Multilayer perceptrons: the builder every sciflow network uses, and a dense velocity field.

``mlp([d_in, h, h, d_out])`` builds Linear -> act -> Linear -> act -> Linear. ``MLPVelocity`` is the
velocity network for plain vector data (2-D toy densities, low-dimensional latents) and follows the
core contract ``model(x, t, *, cond=None, batch=None) -> Tensor`` shaped like ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciflow.graphs import expand_per_graph
from sciflow.nn.embeddings import TimeEmbeddingKind, make_time_embedding

__all__ = ["mlp", "MLPVelocity", "per_sample_time"]


def mlp(
    sizes: Sequence[int],
    *,
    activation: type[nn.Module] = nn.SiLU,
    last_activation: bool = False,
    bias: bool = True,
) -> nn.Sequential:
    """Build a perceptron with layer widths ``sizes`` (input first, output last).

    y = W_L act(... act(W_1 x + b_1) ...) + b_L, with ``act`` after the last layer only when
    ``last_activation``. Shapes: (*, sizes[0]) -> (*, sizes[-1]).
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"sizes must list >= 2 positive integer widths, got {sizes}")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(d_in, d_out, bias=bias))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def per_sample_time(t: Tensor | float, num: int, *, like: Tensor) -> Tensor:
    """Return t as a (num,) tensor with the dtype and device of ``like``.

    Accepts a Python float, a 0-d tensor (one time for every sample) or a (num,) / (num, 1) tensor.
    """
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() == 0:
        return t.expand(num)
    if t.dim() != 1 or t.shape[0] != num:
        raise ValueError(
            f"t must be a scalar or hold one time per sample/graph, shape ({num},); "
            f"got shape {tuple(t.shape)}"
        )
    return t


class MLPVelocity(nn.Module):
    """Dense velocity field v(x, t, c) for vector data.

    v = MLP([x, tau(t), c]),  tau = sinusoidal or Gaussian Fourier time embedding.

    Shapes: x (B, dim), t (B,) or scalar, cond (B, cond_dim) -> (B, dim). With ``batch`` (N,) given,
    x has N rows grouped into B groups and t, cond are per group (expanded by ``t[batch]``).
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        layers: int = 3,
        *,
        cond_dim: int = 0,
        time_dim: int = 32,
        time_embedding: TimeEmbeddingKind = "sinusoidal",
        activation: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or layers < 1 or cond_dim < 0:
            raise ValueError(
                f"need dim, hidden, layers >= 1 and cond_dim >= 0; got dim={dim}, "
                f"hidden={hidden}, layers={layers}, cond_dim={cond_dim}"
            )
        self.dim = dim
        self.cond_dim = cond_dim
        self.time_embed = make_time_embedding(time_embedding, time_dim)
        self.net = mlp(
            [dim + time_dim + cond_dim, *([hidden] * layers), dim], activation=activation
        )

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        cond: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        groups = x.shape[0] if batch is None else (int(batch.max()) + 1 if batch.numel() else 0)
        t = expand_per_graph(per_sample_time(t, groups, like=x), batch)
        parts = [x, self.time_embed(t).to(x.dtype)]
        if self.cond_dim:
            if cond is None:
                raise ValueError(
                    f"this MLPVelocity was built with cond_dim={self.cond_dim}; "
                    "pass cond of shape (B, cond_dim)"
                )
            if cond.dim() != 2 or cond.shape != (groups, self.cond_dim):
                raise ValueError(
                    f"cond must have shape ({groups}, {self.cond_dim}), got {tuple(cond.shape)}"
                )
            parts.append(expand_per_graph(cond.to(x.dtype), batch))
        elif cond is not None:
            raise ValueError("cond was given but this MLPVelocity was built with cond_dim=0")
        return self.net(torch.cat(parts, dim=-1))

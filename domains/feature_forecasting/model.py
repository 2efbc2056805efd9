"""The latent forecaster: flow matching (or regression) of the next latent frame given the past.

VFMF (Boduljak et al. 2025) denoises the next frame's latent with a space-time transformer that
reads clean context latents alongside the noisy target; only the target is denoised:

    v_theta(x_t, t | z_{n-L}, ..., z_{n-1}),   x_t = t z_n + (1 - t) eps,   eps ~ N(0, I)

trained with the linear-path loss || v_theta - (z_n - eps) ||^2 (Lipman et al. 2023) and sampled
with a few Euler steps. Optionally (``prediction="x1"``) the network predicts z_n itself, trained on
|| z_hat - z_n ||^2 and turned into the velocity v = (z_hat - x_t) / (1 - t) for sampling
(:meth:`sciflow.paths.AffinePath.x1_to_velocity`); with ``residual`` z_hat = z_{n-1} + network, a
persistence prior. The deterministic baseline (DINO-Foresight-style regression) is the *same*
network called with an all-zero target slot at t = 0, predicting z_n directly under an MSE loss: the
same parameters, and one network evaluation per training example in both cases.

Forecasts roll out autoregressively: each new latent joins the context window, the oldest leaves.

Shapes: latents (B, k, h, w); context (B, L, k, h, w) with 1 <= L <= max_context.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from sciflow.matcher import FlowMatcher
from sciflow.nn.spacetime import SpaceTimeCondition, SpaceTimeTransformer
from sciflow.solvers import odeint
from sciflow.train import TrainConfig, Trainer, TrainResult

__all__ = [
    "Objective",
    "ForecasterSpec",
    "LatentForecaster",
    "ForecastBatch",
    "sample_windows",
    "train_forecaster",
    "rollout",
]

Objective = Literal["flow", "regression"]


@dataclass(frozen=True, kw_only=True)
class ForecasterSpec:
    """The network's size (stored in checkpoints). patch_size: latent tokens per side of one
    transformer token; dim, depth, heads: the space-time transformer; max_context: the longest
    context window it is trained on."""

    latent_dim: int
    patch_size: int = 2
    dim: int = 48
    depth: int = 3
    heads: int = 4
    max_context: int = 4
    prediction: Literal["velocity", "x1"] = "velocity"
    residual: bool = False

    def __post_init__(self) -> None:
        for name in ("latent_dim", "patch_size", "dim", "depth", "heads", "max_context"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ForecasterSpec.{name}={value!r}; expected an integer >= 1")
        if self.prediction not in ("velocity", "x1"):
            raise ValueError(f"ForecasterSpec.prediction={self.prediction!r}; expected "
                             "'velocity' or 'x1'")
        if self.residual and self.prediction != "x1":
            raise ValueError("ForecasterSpec.residual=True adds the last context frame to a "
                             "predicted next frame, so it needs prediction='x1'")

    def matcher(self) -> FlowMatcher:
        """The flow-matching objective of this parametrisation (linear path, Gaussian source)."""
        return FlowMatcher(target="velocity" if self.prediction == "velocity" else "x1")


class LatentForecaster(nn.Module):
    """The next latent's velocity (or, with ``prediction="x1"``, the next latent itself) given
    the context latents, plus ``predict`` for the regression baseline. Built on
    :class:`sciflow.nn.spacetime.SpaceTimeTransformer`.

    forward(x (B, k, h, w), t (B,), cond=context (B, L, k, h, w)) -> (B, k, h, w). Context frames
    get relative times -L, ..., -1 and the target 0, so one network serves every window length.
    With ``residual`` the x1 prediction is the last context frame plus the network's output (a
    persistence prior). :meth:`velocity` is the core-contract velocity field for the solvers.
    """

    def __init__(self, spec: ForecasterSpec) -> None:
        super().__init__()
        self.spec = spec
        self.net = SpaceTimeTransformer(spec.latent_dim, patch_size=spec.patch_size, dim=spec.dim,
                                        depth=spec.depth, heads=spec.heads)

    def _condition(self, x: Tensor, context: Tensor | None) -> SpaceTimeCondition:
        k = self.spec.latent_dim
        if x.dim() != 4 or x.shape[1] != k:
            raise ValueError(f"x must be a latent frame batch (B, {k}, h, w), got {tuple(x.shape)}")
        if not isinstance(context, Tensor):
            raise TypeError("cond must be the context latents, a tensor (B, L, k, h, w); got "
                            f"{type(context).__name__}")
        if context.dim() != 5 or context.shape[0] != x.shape[0] or context.shape[2:] != x.shape[1:]:
            raise ValueError(f"context must have shape ({x.shape[0]}, L, {k}, {x.shape[2]}, "
                             f"{x.shape[3]}), got {tuple(context.shape)}")
        n_ctx = context.shape[1]
        if not 1 <= n_ctx <= self.spec.max_context:
            raise ValueError(f"context holds {n_ctx} frames; this forecaster takes 1 to "
                             f"{self.spec.max_context}")
        times = torch.arange(-n_ctx, 1, dtype=x.dtype, device=x.device).expand(x.shape[0], -1)
        return SpaceTimeCondition(context=context.to(x.dtype), times=times)

    def forward(self, x: Tensor, t: Tensor | float, *, cond: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        if batch is not None:
            raise ValueError("LatentForecaster works on dense latent frames; batch must be None")
        out = self.net(x[:, None], t, cond=self._condition(x, cond))[:, 0]
        return out + cond[:, -1].to(out.dtype) if self.spec.residual else out

    def velocity(self, x: Tensor, t: Tensor | float, *, cond: Tensor | None = None,
                 batch: Tensor | None = None) -> Tensor:
        """The velocity field (converted from the x1 prediction when the spec says so)."""
        return self.spec.matcher().velocity(self)(x, t, cond=cond, batch=batch)

    def predict(self, context: Tensor) -> Tensor:
        """Regression: the next latent in one evaluation (zero target slot, t = 0)."""
        if context.dim() != 5:
            raise ValueError(f"context must have shape (B, L, k, h, w), got {tuple(context.shape)}")
        b, _, k, h, w = context.shape
        x = torch.zeros(b, k, h, w, dtype=context.dtype, device=context.device)
        return self(x, torch.zeros(b, dtype=context.dtype, device=context.device), cond=context)


@dataclass(frozen=True)
class ForecastBatch:
    """One training batch: context (B, L, k, h, w) and the frame that follows, target (B, k, h, w)."""

    context: Tensor
    target: Tensor

    def to(self, device: torch.device | str) -> ForecastBatch:
        return ForecastBatch(self.context.to(device), self.target.to(device))


def sample_windows(latents: Tensor, batch_size: int, *, min_context: int, max_context: int,
                   generator: torch.Generator) -> ForecastBatch:
    """Random (context, next frame) windows from clips (N, T, k, h, w).

    One context length L ~ U{min_context, ..., min(max_context, T - 1)} per batch (so no padding
    is needed); clips and end frames uniform.
    """
    n, t = latents.shape[:2]
    hi = min(max_context, t - 1)
    if hi < min_context:
        raise ValueError(f"clips of {t} frames cannot give a context of {min_context} frames plus "
                         "a target")
    length = int(torch.randint(min_context, hi + 1, (1,), generator=generator))
    clip = torch.randint(n, (batch_size,), generator=generator)
    end = torch.randint(length, t, (batch_size,), generator=generator)
    frames = end[:, None] - length + torch.arange(length)
    return ForecastBatch(context=latents[clip[:, None], frames], target=latents[clip, end])


def train_forecaster(latents: Tensor, spec: ForecasterSpec, *, objective: Objective = "flow",
                     steps: int = 1500, batch_size: int = 32, lr: float = 1e-3,
                     min_context: int = 1, seed: int = 0, out_dir: str | Path | None = None,
                     progress: bool | None = False) -> tuple[LatentForecaster, TrainResult]:
    """Train a forecaster on latent clips (N, T, k, h, w); returns its EMA copy (eval mode).

    ``objective="flow"``: the flow-matching loss on the next latent (linear path, uniform t);
    ``"regression"``: the MSE of :meth:`LatentForecaster.predict`. Same network, same batches.
    """
    if objective not in ("flow", "regression"):
        raise ValueError(f"objective={objective!r}; expected 'flow' or 'regression'")
    if latents.dim() != 5 or latents.shape[2] != spec.latent_dim:
        raise ValueError(f"latents must be clips (N, T, {spec.latent_dim}, h, w), got "
                         f"{tuple(latents.shape)}")
    model = LatentForecaster(spec)
    matcher = spec.matcher()
    noise = torch.Generator().manual_seed(seed + 7)

    def batch_fn(step: int, g: torch.Generator) -> ForecastBatch:
        return sample_windows(latents, batch_size, min_context=min_context,
                              max_context=spec.max_context, generator=g)

    def loss_fn(net: nn.Module, b: ForecastBatch) -> Tensor:
        if objective == "regression":
            return (net.predict(b.context) - b.target).square().mean()
        return matcher.loss(net, b.target, cond=b.context, generator=noise)

    config = TrainConfig(steps=steps, lr=lr, schedule="cosine", warmup_steps=min(100, steps // 10),
                         ema_decay=min(0.999, max(0.0, 1.0 - 10.0 / max(steps, 1))), seed=seed,
                         out_dir=out_dir, progress=progress, log_every=max(steps // 20, 1))
    trainer = Trainer(model, loss_fn, config, meta={"forecaster": spec.__dict__,
                                                    "objective": objective})
    result = trainer.fit(batch_fn)
    ema = trainer.ema_model
    ema.requires_grad_(False).eval()
    return ema, result


@torch.no_grad()
def rollout(model: LatentForecaster, context: Tensor, *, horizon: int, samples: int = 1,
            objective: Objective = "flow", steps: int = 10, method: str = "euler",
            generator: torch.Generator | None = None, chunk: int = 512) -> Tensor:
    """Autoregressive forecasts with a sliding window: (B, L, k, h, w) -> (B, K, H, k, h, w).

    Flow: each of the K samples draws its own noise at every step and is integrated with
    ``steps`` Euler (or ``method``) steps from t = 0 to 1; the window then drops its oldest frame
    and appends the new one. Regression is deterministic, so it returns K = 1.
    """
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon={horizon!r}; expected an integer >= 1")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r}; expected an integer >= 1")
    if objective not in ("flow", "regression"):
        raise ValueError(f"objective={objective!r}; expected 'flow' or 'regression'")
    if context.dim() != 5:
        raise ValueError(f"context must have shape (B, L, k, h, w), got {tuple(context.shape)}")
    k_samples = samples if objective == "flow" else 1
    ctx_all = context.repeat_interleave(k_samples, dim=0)
    outs = []
    for i in range(0, ctx_all.shape[0], chunk):
        ctx = ctx_all[i:i + chunk]
        frames = []
        for _ in range(horizon):
            if objective == "regression":
                nxt = model.predict(ctx)
            else:
                x0 = torch.randn(ctx[:, 0].shape, generator=generator, dtype=ctx.dtype,
                                 device=ctx.device)
                nxt = odeint(model.velocity, x0, method=method, steps=steps, cond=ctx).x
            frames.append(nxt)
            ctx = torch.cat([ctx[:, 1:], nxt[:, None]], dim=1)
        outs.append(torch.stack(frames, dim=1))
    out = torch.cat(outs)
    return out.reshape(context.shape[0], k_samples, horizon, *context.shape[2:])

"""Forecasting: K autoregressive rollouts of the latent forecaster, integrated by sciflow.solvers.

    context features (B, C, D, h, w) --compressor.encode--> latents (B, C, k, h, w)
    for each of H frames: x0 ~ N(0, I); z = odeint(v_theta(. | window), x0, 0 -> 1); the window
    drops its oldest latent and appends z      (regression: z = the one-shot prediction)
    latents (B, K, H, k, h, w) --compressor.decode--> features (B, K, H, D, h, w)

The velocity field is the forecaster's :meth:`~.model.LatentForecaster.velocity` (an x1
prediction becomes a velocity through the core's path conversion) and the solver any name in
:data:`sciflow.solvers.SOLVERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sciflow.errors import InputError
from sciflow.outputs import ensure_finite
from sciflow.resources import check_memory
from sciflow.solvers import SOLVERS, odeint

from .data import check_features
from .model import LatentForecaster, Model, Objective

__all__ = ["Forecast", "rollout", "sample", "forecast_bytes"]


@dataclass(frozen=True)
class Forecast:
    """K forecasts of H frames for B clips: latents (B, K, H, k, h, w) and the decoded features
    (B, K, H, D, h, w). K = 1 for regression."""

    latents: Tensor
    features: Tensor


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}={value!r}: expected an integer >= 1")
    return value


@torch.no_grad()
def rollout(model: LatentForecaster, context: Tensor, *, horizon: int, samples: int = 1,
            objective: Objective = "flow", steps: int = 10, method: str = "euler",
            generator: torch.Generator | None = None, chunk: int = 512,
            progress: bool | None = False) -> Tensor:
    """Autoregressive forecasts with a sliding window: (B, L, k, h, w) -> (B, K, H, k, h, w).

    Flow: each of the K samples draws its own noise (on the CPU, from ``generator``, so a seed
    gives the same noise on every device) at every frame and is integrated with ``steps`` steps
    of ``method`` from t = 0 to 1; the window then drops its oldest frame and appends the new
    one. Regression is deterministic, so it returns K = 1. A frame that comes out NaN or inf
    stops the rollout with a NonFiniteError naming the frame and the clip. ``progress``: a
    :func:`sciflow.progress.progress` bar over the rows x frames generated.
    """
    from sciflow.progress import progress as bar

    _count("horizon", horizon)
    _count("samples", samples)
    _count("steps", steps)
    if objective not in ("flow", "regression"):
        raise InputError(f"objective={objective!r}; expected 'flow' or 'regression'")
    if method not in SOLVERS:
        raise InputError(f"solver={method!r}: choose from {sorted(SOLVERS)}")
    if context.dim() != 5:
        raise InputError(f"context must have shape (B, L, k, h, w), got {tuple(context.shape)}")
    k_samples = samples if objective == "flow" else 1
    ctx_all = context.repeat_interleave(k_samples, dim=0)
    outs = []
    with bar(total=ctx_all.shape[0] * horizon, desc="forecast", unit="frame",
             enabled=progress) as shown:
        for i in range(0, ctx_all.shape[0], chunk):
            ctx = ctx_all[i:i + chunk]
            frames = []
            for step in range(horizon):
                if objective == "regression":
                    nxt = model.predict(ctx)
                else:
                    x0 = torch.randn(ctx[:, 0].shape, generator=generator, dtype=ctx.dtype)
                    nxt = odeint(model.velocity, x0.to(ctx.device), method=method, steps=steps,
                                 cond=ctx).x
                rows = f"rows {i}..{i + len(ctx) - 1}"
                ensure_finite(nxt, f"forecast frame t+{step + 1} of {rows} (clip = row // "
                              f"{k_samples}, sample = row % {k_samples})", axis_name="row",
                              hint=f"try more sample steps than {steps} or another solver "
                              f"than {method}")
                frames.append(nxt)
                ctx = torch.cat([ctx[:, 1:], nxt[:, None]], dim=1)
                shown.update(len(ctx))
            outs.append(torch.stack(frames, dim=1))
    out = torch.cat(outs)
    return out.reshape(context.shape[0], k_samples, horizon, *context.shape[2:])


def forecast_bytes(model: Model, clips: int, *, samples: int, horizon: int,
                   context: int | None = None, grid: tuple[int, int] | None = None) -> float:
    """Rough peak bytes of forecasting ``clips`` clips with K = ``samples`` over ``horizon``
    frames: the repeated context windows, the latents, and the decoded features with the
    compressor's per-token intermediates (float32)."""
    cfg = model.config
    h, w = grid if grid is not None else cfg.grid
    k, d = model.compressor.latent_dim, model.feature_dim
    rows = float(clips) * (samples if cfg.objective == "flow" else 1)
    per_row = (context or cfg.context) * k + 3 * horizon * k + horizon * (4 * d + 256)
    return 4.0 * rows * h * w * per_row


@torch.no_grad()
def sample(model: Model, context: Tensor, *, horizon: int | None = None,
           samples: int | None = None, solver: str | None = None,
           sample_steps: int | None = None, seed: int = 0,
           progress: bool | None = False) -> Forecast:
    """K forecasts of ``horizon`` frames from context features (B, L, D, h, w), 1 <= L <=
    ``config.context``; defaults (horizon, samples, solver, sample_steps) from ``model.config``.

    Everything random comes from ``seed``: the same call gives the same forecasts. ``progress``
    (None: shown unless ``SCIFLOW_PROGRESS=0``) reports the frames generated. Runs on the
    model's device; the Forecast comes back on the CPU. Raises InputError for a bad count, an
    unknown solver, context of the wrong shape or with NaN/inf, ResourceError when the rollouts
    would not fit in memory, NonFiniteError when a forecast frame comes out NaN or inf.
    """
    cfg = model.config
    horizon = _count("horizon", cfg.horizon if horizon is None else horizon)
    samples = _count("samples", cfg.samples if samples is None else samples)
    steps = _count("sample_steps", cfg.sample_steps if sample_steps is None else sample_steps)
    solver = cfg.solver if solver is None else solver
    if solver not in SOLVERS:
        raise InputError(f"solver={solver!r}: choose from {sorted(SOLVERS)}")
    if not isinstance(context, Tensor) or context.dim() != 5 \
            or context.shape[2] != model.feature_dim:
        shape = tuple(context.shape) if isinstance(context, Tensor) else type(context).__name__
        raise InputError(f"context must be features (B, L, {model.feature_dim}, h, w) of 1 to "
                         f"{cfg.context} frames, got {shape}")
    b, length, _, h, w = context.shape
    if not 1 <= length <= cfg.context:
        raise InputError(f"context holds {length} frames; this model reads 1 to {cfg.context}")
    if h % cfg.patch_size or w % cfg.patch_size:
        raise InputError(f"context has a {h}x{w} token grid, not a multiple of the model's "
                         f"patch_size={cfg.patch_size}")
    check_features(context, "context")
    check_memory(forecast_bytes(model, b, samples=samples, horizon=horizon, context=length,
                                grid=(h, w)),
                 f"{b} clips x {samples} samples x {horizon} frames", name="samples")
    device = model.device
    g = torch.Generator().manual_seed(seed)
    z = model.compressor.encode(context.to(device))
    lat = rollout(model.forecaster, z, horizon=horizon, samples=samples,
                  objective=cfg.objective, steps=steps, method=solver, generator=g,
                  progress=progress)
    features = model.compressor.decode(lat)
    ensure_finite(features, "decoded forecast features", axis_name="clip",
                  hint="the latents were finite: check the compressor")
    return Forecast(latents=lat.cpu(), features=features.cpu())

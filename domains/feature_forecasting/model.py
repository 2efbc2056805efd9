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

Forecasts roll out autoregressively (:mod:`.sampling`): each new latent joins the context
window, the oldest leaves.

Shapes: latents (B, k, h, w); context (B, L, k, h, w) with 1 <= L <= max_context.

:class:`Model` is the trained bundle (fitted compressor + forecaster + decoder heads + the
:class:`~.config.Config` that made them); it saves to one safe checkpoint of kind :data:`KIND`
that :func:`load` reads back. The extractor is rebuilt from the configuration (the filter bank has
no weights; DINOv2 is read from its own file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sciflow.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from sciflow.devices import resolve_device
from sciflow.errors import InputError
from sciflow.matcher import FlowMatcher
from sciflow.nn.spacetime import SpaceTimeCondition, SpaceTimeTransformer

from .autoencoder import Compressor, make_compressor
from .config import Config, _check_int
from .heads import DecoderHeads

__all__ = [
    "KIND",
    "Objective",
    "ForecasterSpec",
    "LatentForecaster",
    "ForecastBatch",
    "sample_windows",
    "forecaster_spec",
    "Model",
    "load",
    "VFMSystem",
    "load_system",
]

KIND = "feature_forecasting"

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
            _check_int(f"ForecasterSpec.{name}", getattr(self, name))
        if self.prediction not in ("velocity", "x1"):
            raise InputError(f"ForecasterSpec.prediction={self.prediction!r}; expected "
                             "'velocity' or 'x1'")
        if self.residual and self.prediction != "x1":
            raise InputError("ForecasterSpec.residual=True adds the last context frame to a "
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
            raise InputError(f"x must be a latent frame batch (B, {k}, h, w), got {tuple(x.shape)}")
        if not isinstance(context, Tensor):
            raise TypeError("cond must be the context latents, a tensor (B, L, k, h, w); got "
                            f"{type(context).__name__}")
        if context.dim() != 5 or context.shape[0] != x.shape[0] or context.shape[2:] != x.shape[1:]:
            raise InputError(f"context must have shape ({x.shape[0]}, L, {k}, {x.shape[2]}, "
                             f"{x.shape[3]}), got {tuple(context.shape)}")
        n_ctx = context.shape[1]
        if not 1 <= n_ctx <= self.spec.max_context:
            raise InputError(f"context holds {n_ctx} frames; this forecaster takes 1 to "
                             f"{self.spec.max_context}")
        times = torch.arange(-n_ctx, 1, dtype=x.dtype, device=x.device).expand(x.shape[0], -1)
        return SpaceTimeCondition(context=context.to(x.dtype), times=times)

    def forward(self, x: Tensor, t: Tensor | float, *, cond: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        if batch is not None:
            raise InputError("LatentForecaster works on dense latent frames; batch must be None")
        out = self.net(x[:, None], t, cond=self._condition(x, cond))[:, 0]
        return out + cond[:, -1].to(out.dtype) if self.spec.residual else out

    def velocity(self, x: Tensor, t: Tensor | float, *, cond: Tensor | None = None,
                 batch: Tensor | None = None) -> Tensor:
        """The velocity field (converted from the x1 prediction when the spec says so)."""
        return self.spec.matcher().velocity(self)(x, t, cond=cond, batch=batch)

    def predict(self, context: Tensor) -> Tensor:
        """Regression: the next latent in one evaluation (zero target slot, t = 0)."""
        if context.dim() != 5:
            raise InputError(f"context must have shape (B, L, k, h, w), got {tuple(context.shape)}")
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
        raise InputError(f"clips of {t} frames cannot give a context of {min_context} frames plus "
                         "a target")
    length = int(torch.randint(min_context, hi + 1, (1,), generator=generator))
    clip = torch.randint(n, (batch_size,), generator=generator)
    end = torch.randint(length, t, (batch_size,), generator=generator)
    frames = end[:, None] - length + torch.arange(length)
    return ForecastBatch(context=latents[clip[:, None], frames], target=latents[clip, end])


def forecaster_spec(config: Config, latent_dim: int) -> ForecasterSpec:
    """The network a Config asks for, on latents of ``latent_dim`` channels."""
    return ForecasterSpec(latent_dim=latent_dim, patch_size=config.patch_size, dim=config.width,
                          depth=config.depth, heads=config.heads, max_context=config.context,
                          prediction=config.prediction, residual=config.residual)


class Model(nn.Module):
    """A trained feature forecaster: ``compressor``, ``forecaster`` and decoder ``heads`` with the
    ``config`` that made them (eval mode, no gradients).

    ``trained_on``: the provenance of its training clips (:attr:`~.data.TrainSet.provenance`,
    saved with it); ``checkpoint``: ``{"path", "digest"}`` of the file :func:`load` read it
    from (None for a model made in this process).
    """

    def __init__(self, config: Config, compressor: Compressor, forecaster: LatentForecaster,
                 heads: DecoderHeads, *, trained_on: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.compressor, self.forecaster, self.heads = compressor, forecaster, heads
        self.trained_on = trained_on
        self.checkpoint: dict[str, str | None] | None = None

    @property
    def cfg(self) -> Config:
        """The old name of :attr:`config`."""
        return self.config

    @property
    def feature_dim(self) -> int:
        """D: channels of the extractor's features the model reads and forecasts."""
        return self.compressor.feature_dim

    @property
    def device(self) -> torch.device:
        return next(self.forecaster.parameters()).device

    def forecast(self, context: Tensor, *, horizon: int | None = None,
                 samples: int | None = None, steps: int | None = None, seed: int = 0,
                 solver: str | None = None) -> Any:
        """:func:`~.sampling.sample` with its old argument names (``steps``: solver steps)."""
        from .sampling import sample

        return sample(self, context, horizon=horizon, samples=samples, sample_steps=steps,
                      solver=solver, seed=seed)

    def meta(self) -> dict[str, Any]:
        h = self.heads
        return {"config": self.config.to_dict(), "feature_dim": self.feature_dim,
                "heads": {"outputs": list(h.outputs), "patch_size": h.patch_size,
                          "num_classes": h.num_classes},
                "trained_on": self.trained_on}

    def save(self, path: str | Path) -> Path:
        """One safe checkpoint (kind ``"feature_forecasting"``, digest checked on load)."""
        return save_checkpoint(path, self, kind=KIND, meta=self.meta())


def load(path: str | Path, *, device: str = "cpu") -> Model:
    """Rebuild a :class:`Model` saved by :meth:`Model.save` (or by sciflow 0.1's
    ``VFMSystem.save``: untagged, its flat configuration under ``meta["vfm"]``).

    Raises FileNotFoundError for a missing file and CheckpointError for a file that is not a
    whole feature-forecasting model (another domain's, a training checkpoint of the forecaster
    alone, a tampered file).
    """
    ck = load_checkpoint(path)
    meta = ck.meta
    if ck.kind not in (KIND, "") or not ("config" in meta or "vfm" in meta):
        raise CheckpointError(f"{str(path)!r} holds a {ck.kind or 'untagged'} checkpoint, not a "
                              "feature-forecasting model; pass the model.pt written by "
                              "`sciflow feature-forecasting train`")
    if "heads" not in meta or "feature_dim" not in meta:
        raise CheckpointError(f"{str(path)!r} is a training checkpoint of the forecaster alone "
                              "(no compressor or heads); pass OUT/model.pt of that run")
    config = Config.from_dict(meta["config"]) if "config" in meta else \
        Config.from_legacy(meta["vfm"])
    d = int(meta["feature_dim"])
    comp = make_compressor(config.compressor, d, config.latent_dim, beta=config.kl_weight)
    hm = meta["heads"]
    heads = DecoderHeads(d, patch_size=hm["patch_size"], num_classes=hm["num_classes"],
                         outputs=hm["outputs"])
    model = Model(config, comp, LatentForecaster(forecaster_spec(config, comp.latent_dim)), heads,
                  trained_on=meta.get("trained_on"))
    load_weights(model, ck.state_dict, path)
    model.checkpoint = {"path": str(Path(path).resolve()), "digest": ck.digest}
    return model.to(resolve_device(device)).requires_grad_(False).eval()


#: the names of sciflow 0.1
VFMSystem = Model
load_system = load

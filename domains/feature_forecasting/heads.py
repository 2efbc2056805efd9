"""Light decoders from token features to interpretable per-pixel outputs.

A forecast lives in feature space; to read it, small heads trained on ground-truth frames map each
token's features to its p x p pixels (segmentation logits, depth, RGB), as VFMF reads its DINOv2
forecasts with linear / DPT-style heads. Here one shared trunk serves all outputs:

    u = GELU(W_2 GELU(Conv3x3([standardise(f), y, x])))  (B, hidden, h, w)
    y = PixelShuffle_p(W_out u)                         (B, n_out, h p, w p)

with n_out = classes (segmentation logits) + 1 (log depth) + 3 (RGB logits), only for the outputs
requested; (y, x) are the token's coordinates in [-1, 1], so outputs that depend on where a token
sits in the frame (depth of a ground plane) are decodable from position-free features. Loss: cross-entropy + |log d_hat - log d| + squared RGB error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciflow.domains.feature_forecasting.autoencoder import FeatureStandardizer
from sciflow.train import TrainConfig, Trainer, TrainResult

__all__ = ["OUTPUTS", "HeadOutputs", "HeadTargets", "DecoderHeads", "fit_heads"]

OUTPUTS: tuple[str, ...] = ("segmentation", "depth", "rgb")


@dataclass(frozen=True)
class HeadOutputs:
    """Decoded maps (absent outputs are None): segmentation logits (B, classes, H, W), depth
    (B, H, W) in the data's units, rgb (B, 3, H, W) in [0, 1]."""

    segmentation: Tensor | None
    depth: Tensor | None
    rgb: Tensor | None


@dataclass(frozen=True)
class HeadTargets:
    """Ground truth for training heads: features (M, D, h, w) and any of segmentation (M, H, W)
    int64, depth (M, H, W) > 0, rgb (M, 3, H, W) in [0, 1]."""

    features: Tensor
    segmentation: Tensor | None = None
    depth: Tensor | None = None
    rgb: Tensor | None = None

    def to(self, device: torch.device | str) -> HeadTargets:
        """The same targets on another device (the Trainer moves batches with ``.to``)."""
        move = lambda x: None if x is None else x.to(device)  # noqa: E731
        return HeadTargets(features=move(self.features), segmentation=move(self.segmentation),
                           depth=move(self.depth), rgb=move(self.rgb))


class DecoderHeads(nn.Module):
    """Per-token decoders from (B, D, h, w) features to (B, *, h p, w p) maps; see module doc."""

    def __init__(self, feature_dim: int, *, patch_size: int, num_classes: int = 0,
                 outputs: Sequence[str] = OUTPUTS, hidden: int = 64) -> None:
        super().__init__()
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown or not outputs:
            raise ValueError(f"outputs={tuple(outputs)!r}; choose a non-empty subset of {OUTPUTS}")
        if "segmentation" in outputs and num_classes < 2:
            raise ValueError(f"segmentation needs num_classes >= 2, got {num_classes}")
        self.outputs = tuple(o for o in OUTPUTS if o in outputs)
        self.patch_size, self.num_classes = patch_size, num_classes
        self.sizes = {"segmentation": num_classes, "depth": 1, "rgb": 3}
        n_out = sum(self.sizes[o] for o in self.outputs)
        self.norm = FeatureStandardizer(feature_dim)
        self.trunk = nn.Sequential(
            nn.Conv2d(feature_dim + 2, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 1), nn.GELU(),
            nn.Conv2d(hidden, n_out * patch_size**2, 1))

    def raw(self, features: Tensor) -> dict[str, Tensor]:
        """Un-activated maps per output: logits, log depth (B, 1, H, W), RGB logits."""
        b, _, h, w = features.shape
        ys = torch.linspace(-1, 1, h, dtype=features.dtype, device=features.device)
        xs = torch.linspace(-1, 1, w, dtype=features.dtype, device=features.device)
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij")).expand(b, -1, -1, -1)
        x = torch.cat([self.norm(features), coords], dim=1)
        y = F.pixel_shuffle(self.trunk(x), self.patch_size)
        parts = y.split([self.sizes[o] for o in self.outputs], dim=1)
        return dict(zip(self.outputs, parts))

    def forward(self, features: Tensor) -> HeadOutputs:
        if features.dim() != 4 or features.shape[1] != self.norm.dim:
            raise ValueError(f"features must have shape (B, {self.norm.dim}, h, w), got "
                             f"{tuple(features.shape)}")
        raw = self.raw(features)
        return HeadOutputs(
            segmentation=raw.get("segmentation"),
            depth=raw["depth"][:, 0].exp() if "depth" in raw else None,
            rgb=torch.sigmoid(raw["rgb"]) if "rgb" in raw else None)

    def decode(self, features: Tensor, *, batch_size: int = 512) -> HeadOutputs:
        """Decode feature maps with any leading dims (*, D, h, w) in chunks, without gradients,
        on the heads' device; the maps come back on the device of ``features``, the segmentation
        as labels (*, H, W) (argmax), not logits."""
        lead = features.shape[:-3]
        flat = features.reshape(-1, *features.shape[-3:])
        device = self.norm.mean.device
        segs, depths, rgbs = [], [], []
        with torch.no_grad():
            for i in range(0, flat.shape[0], batch_size):
                out = self(flat[i:i + batch_size].to(device))
                if out.segmentation is not None:
                    segs.append(out.segmentation.argmax(dim=1))
                if out.depth is not None:
                    depths.append(out.depth)
                if out.rgb is not None:
                    rgbs.append(out.rgb)

        def join(parts: list[Tensor]) -> Tensor | None:
            if not parts:
                return None
            joined = torch.cat([p.to(features.device) for p in parts])
            return joined.reshape(*lead, *parts[0].shape[1:])

        return HeadOutputs(segmentation=join(segs), depth=join(depths), rgb=join(rgbs))

    def loss(self, batch: HeadTargets) -> tuple[Tensor, dict[str, float]]:
        """Sum of the requested losses on one batch (see module doc), and each term."""
        raw = self.raw(batch.features)
        terms: dict[str, Tensor] = {}
        if "segmentation" in raw and batch.segmentation is not None:
            terms["ce"] = F.cross_entropy(raw["segmentation"], batch.segmentation)
        if "depth" in raw and batch.depth is not None:
            terms["log_depth_l1"] = (raw["depth"][:, 0] - batch.depth.log()).abs().mean()
        if "rgb" in raw and batch.rgb is not None:
            terms["rgb_mse"] = (torch.sigmoid(raw["rgb"]) - batch.rgb).square().mean()
        if not terms:
            raise ValueError(f"no targets for the heads' outputs {self.outputs}")
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}


def fit_heads(heads: DecoderHeads, data: HeadTargets, *, steps: int = 800, batch_size: int = 64,
              lr: float = 2e-3, seed: int = 0, progress: bool | None = False,
              device: str = "cpu") -> TrainResult:
    """Fit the feature standardisation on ``data.features``, then train the heads (AdamW, cosine)
    on ``device``; keeps the EMA weights and leaves the heads frozen in eval mode, on the device
    of ``data.features``."""
    m = data.features.shape[0]
    for name in ("segmentation", "depth", "rgb"):
        value = getattr(data, name)
        if value is not None and value.shape[0] != m:
            raise ValueError(f"HeadTargets.{name} has {value.shape[0]} rows but features have {m}")
    heads.requires_grad_(True).train()
    heads.norm.fit(data.features)

    def batch_fn(step: int, g: torch.Generator) -> HeadTargets:
        idx = torch.randint(m, (batch_size,), generator=g)
        pick = lambda x: None if x is None else x[idx]  # noqa: E731
        return HeadTargets(features=data.features[idx], segmentation=pick(data.segmentation),
                           depth=pick(data.depth), rgb=pick(data.rgb))

    config = TrainConfig(steps=steps, lr=lr, schedule="cosine", warmup_steps=min(50, steps // 10),
                         ema_decay=min(0.99, max(0.0, 1.0 - 10.0 / max(steps, 1))), seed=seed,
                         progress=progress, device=device,
                         log_every=max(steps // 10, 1))
    trainer = Trainer(heads, lambda net, b: net.loss(b), config)
    result = trainer.fit(batch_fn)
    heads.load_state_dict(trainer.ema_model.state_dict())
    heads.to(data.features.device).requires_grad_(False).eval()
    return result

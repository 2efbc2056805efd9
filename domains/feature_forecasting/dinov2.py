"""The DINOv2 feature extractor, built from its description and loaded from a local file.

The DINOv2 vision transformer with register tokens (Oquab et al. 2024, "DINOv2"; Darcet et al.
2024, "Vision Transformers Need Registers"), loaded from a local checkpoint file in the official
state-dict layout (``dinov2_vitb14_reg4_pretrain.pth`` and its siblings) through
:func:`sciflow.checkpoint.load_foreign_weights` (tensors only, never unpickled code). As in VFMF
(Boduljak et al. 2025) the features of several intermediate blocks (ViT-B: 2, 5, 8, 11), each
passed through the final LayerNorm, are concatenated per patch: 4 x 768 = 3072 channels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciflow.checkpoint import CheckpointError

from .extractors import check_images

__all__ = [
    "DinoVisionTransformer",
    "DINOv2Extractor",
    "CheckpointLayoutError",
    "load_dinov2_state_dict",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CheckpointLayoutError(CheckpointError):
    """A checkpoint's tensors do not match the DINOv2 layout this module builds."""


class _PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _SwiGLU(nn.Module):
    """SwiGLU feed-forward of ViT-g: w3(silu(x W1) * (x W2)), W1 and W2 fused as ``w12``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class _Block(nn.Module):
    """Pre-norm block: x + ls1(attn(norm1 x)), then x + ls2(ffn(norm2 x))."""

    def __init__(self, dim: int, heads: int, ffn: str, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = _Mlp(dim, hidden) if ffn == "mlp" else _SwiGLU(dim, hidden)
        self.ls2 = _LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """The DINOv2 ViT (with optional register tokens), parameter names as the official checkpoints.

    Tokens: [cls, registers..., patches...]; the learned position embedding (trained on a
    ``pos_grid`` x ``pos_grid`` patch grid) is added to cls and patches before the registers are
    inserted, and resized bicubically (antialiased, output size given exactly: the settings of the
    register models) for other grids. Blocks are pre-norm with LayerScale; LayerNorm eps 1e-6.

    Shapes: (B, 3, H, W) normalised images, H and W multiples of ``patch_size`` ->
    :meth:`intermediate_layers` gives one (B, dim, H / p, W / p) map per requested block.
    """

    def __init__(self, *, dim: int = 768, depth: int = 12, heads: int = 12, patch_size: int = 14,
                 pos_grid: int = 37, registers: int = 4, ffn: str = "mlp",
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if ffn not in ("mlp", "swiglu"):
            raise ValueError(f"ffn={ffn!r}; expected 'mlp' or 'swiglu'")
        if dim % heads:
            raise ValueError(f"dim={dim} is not divisible by heads={heads}")
        self.dim, self.depth, self.patch_size = dim, depth, patch_size
        self.num_registers = registers
        self.patch_embed = _PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pos_grid**2, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, registers, dim)) if registers else None
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads, ffn, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)

    def position_embedding(self, h: int, w: int) -> Tensor:
        """(1, 1 + h * w, dim): the cls position and the patch grid resized to h x w."""
        n = self.pos_embed.shape[1] - 1
        side = int(round(math.sqrt(n)))
        if h == side and w == side:
            return self.pos_embed
        grid = self.pos_embed[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True)
        grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1).to(self.pos_embed.dtype)
        return torch.cat([self.pos_embed[:, :1], grid], dim=1)

    def intermediate_layers(self, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
        """Patch features after each block in ``layers`` (0-based), final-normed, as maps."""
        b, _, height, width = x.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"image size {height}x{width} is not a multiple of patch {p}")
        bad = [i for i in layers if not 0 <= i < self.depth]
        if bad:
            raise ValueError(f"layers {bad} do not exist in a {self.depth}-block model")
        h, w = height // p, width // p
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), self.patch_embed(x)], dim=1)
        tokens = tokens + self.position_embedding(h, w)
        if self.register_tokens is not None:
            tokens = torch.cat([tokens[:, :1], self.register_tokens.expand(b, -1, -1),
                                tokens[:, 1:]], dim=1)
        skip, out = 1 + self.num_registers, []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in layers:
                patches = self.norm(tokens)[:, skip:]
                out.append(patches.transpose(1, 2).reshape(b, self.dim, h, w))
        return out


def load_dinov2_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a DINOv2 checkpoint file safely (tensors only) into the flat official layout.

    Accepts the official ``*_pretrain.pth`` files (a flat state dict), or a dict holding it under
    ``"model"``, ``"teacher"`` or ``"state_dict"``; strips ``module.``/``backbone.`` prefixes and
    un-chunks FSDP block chunks (``blocks.<chunk>.<i>.`` -> ``blocks.<i>.``).
    """
    from sciflow.checkpoint import load_foreign_weights

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DINOv2 checkpoint {str(path)!r} does not exist; pass the path "
                                "of a local file such as dinov2_vitb14_reg4_pretrain.pth")
    try:
        state = load_foreign_weights(path, what="DINOv2 checkpoint")
    except CheckpointError as err:
        raise CheckpointLayoutError(f"cannot read {str(path)!r} as a tensor-only checkpoint "
                                    f"({err})") from err
    for key in ("model", "teacher", "state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise CheckpointLayoutError(f"{str(path)!r} holds a {type(state).__name__}, not a "
                                    "state dict")
    flat: dict[str, Tensor] = {}
    for k, v in state.items():
        k = re.sub(r"^(module\.|backbone\.)+", "", str(k))
        k = re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", k)
        flat[k] = v
    return flat


def _config_from_state(state: Mapping[str, Tensor], heads: int | None) -> dict[str, object]:
    need = ("cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight")
    missing = [k for k in need if k not in state]
    if missing:
        raise CheckpointLayoutError(f"not a DINOv2 state dict: missing {missing}")
    dim = int(state["cls_token"].shape[-1])
    n = int(state["pos_embed"].shape[1]) - 1
    side = int(round(math.sqrt(n)))
    if side * side != n:
        raise CheckpointLayoutError(f"pos_embed holds {n} patch positions, not a square grid")
    depth = 1 + max(int(m.group(1)) for k in state
                    if (m := re.match(r"blocks\.(\d+)\.", k)) is not None)
    regs = state.get("register_tokens")
    ffn = "swiglu" if any(".mlp.w12." in k for k in state) else "mlp"
    hidden_key = "blocks.0.mlp.fc1.weight" if ffn == "mlp" else "blocks.0.mlp.w3.weight"
    hidden = state[hidden_key].shape[0 if ffn == "mlp" else 1]
    ratio = hidden / dim if ffn == "mlp" else 4.0
    return dict(dim=dim, depth=depth, heads=heads if heads is not None else max(dim // 64, 1),
                patch_size=int(state["patch_embed.proj.weight"].shape[-1]), pos_grid=side,
                registers=0 if regs is None else int(regs.shape[1]), ffn=ffn, mlp_ratio=ratio)


class DINOv2Extractor(nn.Module):
    """DINOv2 features of chosen blocks, concatenated per patch (VFMF's features).

    Images in [0, 1] are resized (bilinear, antialiased) to ``grid`` x patch_size pixels when a
    ``grid`` is given (else cropped down to a multiple of the patch), normalised with the ImageNet
    mean and std, and passed through the ViT; each requested block's output goes through the final
    LayerNorm; the maps are concatenated: (B, 3, H, W) -> (B, len(layers) * dim, h, w).

    Example
    -------
    >>> ext = DINOv2Extractor.from_checkpoint("dinov2_vitb14_reg4_pretrain.pth")  # doctest: +SKIP
    >>> ext(torch.rand(1, 3, 224, 224)).shape  # doctest: +SKIP
    torch.Size([1, 3072, 16, 16])
    """

    name = "dinov2"

    def __init__(self, vit: DinoVisionTransformer, *, layers: Sequence[int] | None = None,
                 grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.vit = vit.eval().requires_grad_(False)
        if layers is None:  # four evenly spaced blocks ending at the last: 2, 5, 8, 11 for 12
            step = vit.depth // 4
            layers = (tuple(range(vit.depth - 1 - 3 * step, vit.depth, step)) if step
                      else tuple(range(vit.depth)))
        self.layers = tuple(int(i) for i in layers)
        self.grid_size = grid
        self.dim = vit.dim * len(self.layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1),
                             persistent=False)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, layers: Sequence[int] | None = None,
                        grid: tuple[int, int] | None = None,
                        heads: int | None = None) -> DINOv2Extractor:
        """Build the ViT that fits a local checkpoint file and load it strictly.

        The architecture (width, depth, patch, registers, FFN kind) is read off the tensors;
        ``heads`` defaults to width / 64, as in every released DINOv2 model.
        """
        state = load_dinov2_state_dict(path)
        vit = DinoVisionTransformer(**_config_from_state(state, heads))  # type: ignore[arg-type]
        result = vit.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointLayoutError(
                f"{str(path)!r} does not fit the DINOv2 layout: missing "
                f"{result.missing_keys[:8]}, unexpected {result.unexpected_keys[:8]}")
        return cls(vit, layers=layers, grid=grid)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        if self.grid_size is not None:
            return self.grid_size
        p = self.vit.patch_size
        if height < p or width < p:
            raise ValueError(f"image size {height}x{width} is smaller than one patch ({p})")
        return height // p, width // p

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        check_images(images)
        h, w = self.grid(images.shape[-2], images.shape[-1])
        p = self.vit.patch_size
        if self.grid_size is not None:
            x = F.interpolate(images, size=(h * p, w * p), mode="bilinear", antialias=True,
                              align_corners=False)
        else:
            x = images[..., : h * p, : w * p]
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return torch.cat(self.vit.intermediate_layers(x, self.layers), dim=1)


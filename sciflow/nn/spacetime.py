"""A spatio-temporal transformer velocity network for image series (B, T, C, H, W).

Each frame is cut into p x p patches (a strided convolution), giving tokens h (B, L, N, D) with
L frames and N = (H / p)(W / p) patches. A block attends over space (the N tokens of one frame),
then over time (the L frames of one patch position), then applies an MLP; each of the three
sub-blocks is modulated by adaLN-Zero from the flow time (Peebles & Xie 2023, DiT):

    h <- h + alpha_t * F(norm(h) * (1 + gamma_t) + beta_t),   (gamma_t, beta_t, alpha_t) = MLP(emb(t))

with alpha_t zero at initialisation, so every block starts as the identity. Two options follow
UniTS (arXiv 2512.04461), both off by default:

* ``acor`` (Adaptive Condition Injector, SPADE-like; Park et al. 2019): the normalisation of each
  attention sub-block is a GroupNorm whose affine transform comes from the condition,
  norm(h) = GN(h) * (1 + g(c)) + b(c), with (g, b) from a Conv2d over the frame's patch grid
  (spatial sub-block) or a Conv1d over the frames of a patch (temporal sub-block).
* ``stm`` (Spatiotemporal-aware Modulator): an additive bias on the attention logits per head,
  M = w1 * M_pos + w2 * M_aux: M_pos from the relative position of two patches (spatial; an MLP
  of signed log-offsets, after Swin v2's continuous position bias) or of two acquisition times
  (temporal; an MLP of sinusoidal features of the time difference); M_aux a low-rank similarity
  of the auxiliary-modality tokens (e.g. Sentinel-1 backscatter) of the two patches or frames.

The network serves any domain whose data are frames on a grid: remote-sensing image series
(all frames generated, conditions per frame) and feature forecasting (clean context frames plus
noisy target frames, only the targets denoised).

Shapes: x (B, T, C, H, W), t (B,) -> velocity (B, T, C, H, W). H and W must be multiples of p.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciflow.nn.embeddings import SinusoidalTimeEmbedding, TimeEmbeddingKind, make_time_embedding
from sciflow.nn.mlp import mlp, per_sample_time

__all__ = ["SpaceTimeCondition", "SpaceTimeTransformer", "SpaceTimeBlock"]


@dataclass(frozen=True)
class SpaceTimeCondition:
    """What a :class:`SpaceTimeTransformer` is conditioned on, besides x and the flow time.

    L = Tc + T frames in all: the ``Tc`` context frames (if any) come first, then the T frames of
    x. Every per-frame field covers all L frames.

    Fields
    ------
    frames:
        (B, L, Cf, H, W) per-pixel conditions of each frame (observed values, masks, ...); read
        by the patch embedding (concatenated with the frame) and by ACor.
    context:
        (B, Tc, C, H, W) clean frames that are not generated (e.g. the past in forecasting);
        they join the token sequence and are dropped from the output.
    times:
        (B, L) acquisition time of each frame, in any unit (days, frame index); used for the
        temporal position embedding and the temporal STM bias. Default: 0, 1, ..., L - 1.
    frame_features:
        (B, L, Ff) per-frame metadata (day-of-year features, cloud fraction, ...).
    aux:
        (B, L, Ca, H, W) an auxiliary modality (e.g. SAR backscatter) for the STM bias M_aux
        and ACor.
    vector:
        (B, V) a per-sample condition (location embedding, class label) added to the adaLN input.
    """

    frames: Tensor | None = None
    context: Tensor | None = None
    times: Tensor | None = None
    frame_features: Tensor | None = None
    aux: Tensor | None = None
    vector: Tensor | None = None

    def to(self, *args: Any, **kwargs: Any) -> SpaceTimeCondition:
        """Move or cast every tensor field (same arguments as ``Tensor.to``)."""
        return SpaceTimeCondition(
            **{
                f.name: None
                if getattr(self, f.name) is None
                else getattr(self, f.name).to(*args, **kwargs)
                for f in fields(self)
            }
        )

    def index(self, rows: Tensor | slice) -> SpaceTimeCondition:
        """The condition of a subset of the batch (rows along dim 0 of every field)."""
        return SpaceTimeCondition(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[rows]
                for f in fields(self)
            }
        )

    def repeat(self, n: int) -> SpaceTimeCondition:
        """Each sample repeated n times along dim 0 (for ensembles): row b -> rows b*n..b*n+n-1."""
        return SpaceTimeCondition(
            **{
                f.name: None
                if getattr(self, f.name) is None
                else getattr(self, f.name).repeat_interleave(n, dim=0)
                for f in fields(self)
            }
        )


def _sincos_2d(h: int, w: int, dim: int, *, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Fixed 2-D sinusoidal position embedding (half the channels for y, half for x): (h * w, dim)."""
    quarter = dim // 4
    omega = 1.0 / 10_000 ** (torch.arange(quarter, dtype=torch.float64, device=device) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=device),
        torch.arange(w, dtype=torch.float64, device=device),
        indexing="ij",
    )
    parts = []
    for pos in (ys.reshape(-1), xs.reshape(-1)):
        arg = pos[:, None] * omega[None]
        parts += [torch.sin(arg), torch.cos(arg)]
    emb = torch.cat(parts, dim=1)
    if emb.shape[1] < dim:
        emb = F.pad(emb, (0, dim - emb.shape[1]))
    return emb.to(dtype)


def _group_norm(h: Tensor, groups: int, eps: float = 1e-6) -> Tensor:
    """GroupNorm over the sequence axis (-2) and each group of channels: (..., S, D) -> same."""
    *lead, s, d = h.shape
    g = h.reshape(*lead, s, groups, d // groups)
    mean = g.mean(dim=(-3, -1), keepdim=True)
    var = g.var(dim=(-3, -1), keepdim=True, unbiased=False)
    return ((g - mean) * torch.rsqrt(var + eps)).reshape(h.shape)


class _Attention(nn.Module):
    """Multi-head self-attention over axis -2 of (..., S, D), with an optional additive logit bias
    broadcastable to (..., heads, S, S)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, u: Tensor, bias: Tensor | None) -> Tensor:
        *lead, s, d = u.shape
        q, k, v = self.qkv(u).reshape(*lead, s, 3, self.heads, d // self.heads).unbind(dim=-3)
        q, k, v = (z.transpose(-3, -2) for z in (q, k, v))  # (..., heads, S, hd)
        if bias is not None:
            bias = bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(-3, -2).reshape(*lead, s, d))


class _ACor(nn.Module):
    """SPADE-like affine parameters of one sub-block from the condition tokens.

    Spatial: Conv2d 3x3 over a frame's patch grid; temporal: Conv1d (kernel 3) over the frames.
    Zero-initialised, so GN(h) * (1 + g) + b starts as the plain GroupNorm.
    """

    def __init__(self, cond_dim: int, dim: int, *, spatial: bool) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial else nn.Conv1d
        self.spatial = spatial
        self.conv = conv(cond_dim, 2 * dim, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, e: Tensor, grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """e: (B, L, N, Dc) condition tokens -> gamma, beta in the sub-block's layout:
        spatial (B, L, N, D), temporal (B, N, L, D)."""
        b, n_frames, n, dc = e.shape
        if self.spatial:
            z = e.reshape(b * n_frames, grid[0], grid[1], dc).permute(0, 3, 1, 2)
            out = self.conv(z).permute(0, 2, 3, 1).reshape(b, n_frames, n, -1)
        else:
            z = e.transpose(1, 2).reshape(b * n, n_frames, dc).transpose(1, 2)
            out = self.conv(z).transpose(1, 2).reshape(b, n, n_frames, -1)
        return out.chunk(2, dim=-1)


class _STMBias(nn.Module):
    """Additive attention bias M = w1 * M_pos + w2 * M_aux of one sub-block, per head."""

    def __init__(self, heads: int, *, pos_features: int, aux_dim: int, rank: int = 8) -> None:
        super().__init__()
        self.pos = mlp([pos_features, 32, heads])
        nn.init.zeros_(self.pos[-1].weight)
        nn.init.zeros_(self.pos[-1].bias)
        self.w_pos = nn.Parameter(torch.ones(heads))
        self.heads, self.rank = heads, rank
        if aux_dim:
            self.q_aux = nn.Linear(aux_dim, heads * rank)
            self.k_aux = nn.Linear(aux_dim, heads * rank)
            nn.init.zeros_(self.k_aux.weight)
            nn.init.zeros_(self.k_aux.bias)
            self.w_aux = nn.Parameter(torch.ones(heads))
        else:
            self.q_aux = self.k_aux = None

    def forward(self, pos_features: Tensor, aux: Tensor | None) -> Tensor:
        """pos_features (..., S, S, P) and aux tokens (..., S, Da) -> bias (..., heads, S, S)."""
        bias = self.w_pos[:, None, None] * self.pos(pos_features).movedim(-1, -3)
        if self.q_aux is not None and aux is not None:
            *lead, s, _ = aux.shape
            q = self.q_aux(aux).reshape(*lead, s, self.heads, self.rank).transpose(-3, -2)
            k = self.k_aux(aux).reshape(*lead, s, self.heads, self.rank).transpose(-3, -2)
            m_aux = q @ k.transpose(-1, -2) / math.sqrt(self.rank)
            bias = bias + self.w_aux[:, None, None] * m_aux
        return bias


class SpaceTimeBlock(nn.Module):
    """Spatial attention, temporal attention and an MLP, each adaLN-Zero modulated (see module doc).

    Shapes: h (B, L, N, D), c (B, D) -> (B, L, N, D).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        mlp_ratio: float = 4.0,
        acor_dim: int = 0,
        stm: bool = False,
        aux_dim: int = 0,
        groups: int = 8,
    ) -> None:
        super().__init__()
        self.groups = groups
        self.ada = nn.Linear(dim, 9 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.attn_space = _Attention(dim, heads)
        self.attn_time = _Attention(dim, heads)
        hidden = int(round(mlp_ratio * dim))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.acor_space = _ACor(acor_dim, dim, spatial=True) if acor_dim else None
        self.acor_time = _ACor(acor_dim, dim, spatial=False) if acor_dim else None
        self.stm_space = _STMBias(heads, pos_features=2, aux_dim=aux_dim) if stm else None
        self.stm_time = _STMBias(heads, pos_features=16, aux_dim=aux_dim) if stm else None

    def _norm(
        self, h: Tensor, acor: _ACor | None, e: Tensor | None, grid: tuple[int, int]
    ) -> Tensor:
        if acor is None or e is None:
            return F.layer_norm(h, h.shape[-1:], eps=1e-6)
        gamma, beta = acor(e, grid)
        return _group_norm(h, self.groups) * (1 + gamma) + beta

    def forward(
        self,
        h: Tensor,
        c: Tensor,
        *,
        grid: tuple[int, int],
        cond_tokens: Tensor | None,
        aux_tokens: Tensor | None,
        space_pos: Tensor | None,
        time_pos: Tensor | None,
    ) -> Tensor:
        mod = self.ada(c)[:, None, None, :].chunk(9, dim=-1)  # each (B, 1, 1, D)
        # spatial sub-block: sequences are the N patches of one frame, layout (B, L, N, D)
        u = self._norm(h, self.acor_space, cond_tokens, grid) * (1 + mod[1]) + mod[0]
        bias = None
        if self.stm_space is not None:
            bias = self.stm_space(space_pos, aux_tokens)  # (B or 1, L or 1, heads, N, N)
        h = h + mod[2] * self.attn_space(u, bias)
        # temporal sub-block: sequences are the L frames of one patch, layout (B, N, L, D)
        ht = h.transpose(1, 2)
        u = self._norm(ht, self.acor_time, cond_tokens, grid) * (1 + mod[4]) + mod[3]
        bias = None
        if self.stm_time is not None:
            aux_t = None if aux_tokens is None else aux_tokens.transpose(1, 2)
            bias = self.stm_time(time_pos, aux_t)  # (B, N or 1, heads, L, L)
        ht = ht + mod[5] * self.attn_time(u, bias)
        h = ht.transpose(1, 2)
        u = F.layer_norm(h, h.shape[-1:], eps=1e-6) * (1 + mod[7]) + mod[6]
        return h + mod[8] * self.mlp(u)


class SpaceTimeTransformer(nn.Module):
    """Velocity network for image series: patch tokens, alternating spatial / temporal attention,
    adaLN-Zero flow-time conditioning, optional ACor condition injection and STM attention bias.

    Follows the core contract ``model(x, t, *, cond=None, batch=None)``: x (B, T, C, H, W),
    t (B,) or a scalar, cond a :class:`SpaceTimeCondition` -> (B, T, C, H, W). ``batch`` must be
    None (dense data).

    Parameters (all keyword-only except ``channels``)
    ----------
    channels:
        C, the channels of each generated frame (and of context frames).
    frame_channels:
        Cf of ``cond.frames`` (0: no per-pixel frame conditions).
    aux_channels:
        Ca of ``cond.aux`` (0: no auxiliary modality).
    frame_features:
        Ff of ``cond.frame_features`` (0: none).
    vector_dim:
        V of ``cond.vector`` (0: none).
    patch_size:
        p; H and W must be multiples of it. Tokens per frame: (H / p)(W / p).
    dim, depth, heads, mlp_ratio:
        Token width, number of blocks, attention heads (dim must be divisible by heads and by
        ``groups``), MLP width factor.
    acor:
        Use the condition injector (needs frame_channels or aux_channels > 0).
    stm:
        Use the attention-logit bias (M_aux only when aux_channels > 0).
    cond_dim:
        Width of the condition tokens read by ACor and the aux tokens read by STM (default dim/2).
    pixel_head:
        Channels of a small full-resolution convolutional head that refines the patch output
        from x and the target frames' conditions (0: off). Helps copy pixel detail (observed
        values) that a patch bottleneck would blur.
    groups:
        Channel groups of the ACor GroupNorm.
    time_embedding:
        Flow-time embedding, ``"sinusoidal"`` or ``"fourier"``.
    time_scale:
        Multiplier of ``cond.times`` before its sinusoidal embedding; the embedding resolves
        periods from 2 pi / time_scale up to 10^4 times that, in the unit of ``cond.times``.

    Example
    -------
    >>> net = SpaceTimeTransformer(4, frame_channels=2, patch_size=4, dim=32, depth=1, heads=4)
    >>> x, frames = torch.randn(2, 5, 4, 16, 16), torch.randn(2, 5, 2, 16, 16)
    >>> net(x, torch.rand(2), cond=SpaceTimeCondition(frames=frames)).shape
    torch.Size([2, 5, 4, 16, 16])
    """

    def __init__(
        self,
        channels: int,
        *,
        frame_channels: int = 0,
        aux_channels: int = 0,
        frame_features: int = 0,
        vector_dim: int = 0,
        patch_size: int = 4,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        acor: bool = False,
        stm: bool = False,
        cond_dim: int | None = None,
        pixel_head: int = 0,
        groups: int = 8,
        time_embedding: TimeEmbeddingKind = "sinusoidal",
        time_scale: float = 1.0,
    ) -> None:
        super().__init__()
        ints = {
            "channels": (channels, 1),
            "frame_channels": (frame_channels, 0),
            "aux_channels": (aux_channels, 0),
            "frame_features": (frame_features, 0),
            "vector_dim": (vector_dim, 0),
            "patch_size": (patch_size, 1),
            "dim": (dim, 8),
            "depth": (depth, 1),
            "heads": (heads, 1),
            "pixel_head": (pixel_head, 0),
            "groups": (groups, 1),
        }
        for name, (value, low) in ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if dim % heads or dim % 4 or (acor and dim % groups):
            raise ValueError(
                f"dim={dim} must be divisible by 4, heads={heads}"
                + (f" and groups={groups}" if acor else "")
            )
        if acor and frame_channels + aux_channels == 0:
            raise ValueError(
                "acor=True injects the conditions, but frame_channels and "
                "aux_channels are both 0: there is no condition to inject"
            )
        self.channels, self.frame_channels, self.aux_channels = (
            channels,
            frame_channels,
            aux_channels,
        )
        self.frame_features, self.vector_dim = frame_features, vector_dim
        self.patch_size, self.dim, self.acor, self.stm = patch_size, dim, acor, stm
        cond_dim = cond_dim if cond_dim is not None else max(dim // 2, 8)
        p = patch_size
        self.embed = nn.Conv2d(channels + frame_channels, dim, p, stride=p)
        self.kind = nn.Parameter(0.02 * torch.randn(2, dim))  # token type: context / target
        self.frame_time = SinusoidalTimeEmbedding(dim, scale=time_scale)
        self.frame_time_proj = nn.Linear(dim, dim)
        self.delta_time = SinusoidalTimeEmbedding(16, scale=time_scale)
        self.features_proj = nn.Linear(frame_features, dim) if frame_features else None
        self.flow_time = make_time_embedding(time_embedding, dim)
        self.flow_mlp = mlp([dim, dim, dim])
        self.vector_proj = nn.Linear(vector_dim, dim) if vector_dim else None
        self.cond_embed = (
            nn.Conv2d(frame_channels + aux_channels, cond_dim, p, stride=p) if acor else None
        )
        aux_dim = cond_dim if (stm and aux_channels) else 0
        self.aux_embed = nn.Conv2d(aux_channels, aux_dim, p, stride=p) if aux_dim else None
        self.blocks = nn.ModuleList(
            SpaceTimeBlock(
                dim,
                heads,
                mlp_ratio=mlp_ratio,
                acor_dim=cond_dim if acor else 0,
                stm=stm,
                aux_dim=aux_dim,
                groups=groups,
            )
            for _ in range(depth)
        )
        self.final_ada = nn.Linear(dim, 2 * dim)
        nn.init.zeros_(self.final_ada.weight)
        nn.init.zeros_(self.final_ada.bias)
        self.out = nn.Linear(dim, p * p * channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.pixel_head = pixel_head
        if pixel_head:
            self.pixel_features = nn.Linear(dim, p * p * pixel_head)
            self.pixel_net = nn.Sequential(
                nn.Conv2d(pixel_head + channels + frame_channels, pixel_head, 3, padding=1),
                nn.SiLU(),
                nn.Conv2d(pixel_head, channels, 3, padding=1),
            )
            nn.init.zeros_(self.pixel_net[-1].weight)
            nn.init.zeros_(self.pixel_net[-1].bias)

    # ------------------------------------------------------------------ input checks
    def _check(self, x: Tensor, cond: SpaceTimeCondition | None) -> SpaceTimeCondition:
        if not isinstance(x, Tensor) or x.dim() != 5:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be (B, T, C, H, W), got {shape}")
        b, t, c, h, w = x.shape
        if c != self.channels:
            raise ValueError(
                f"x has {c} channels per frame but the network was built with "
                f"channels={self.channels}"
            )
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(
                f"frame size {h}x{w} is not a multiple of patch_size={p}; pad or "
                "crop the frames (tiles of e.g. 32x32 with p=4)"
            )
        if cond is None:
            cond = SpaceTimeCondition()
        if not isinstance(cond, SpaceTimeCondition):
            raise TypeError(f"cond must be a SpaceTimeCondition, got {type(cond).__name__}")
        tc = 0 if cond.context is None else cond.context.shape[1]
        if cond.context is not None and (
            cond.context.dim() != 5
            or cond.context.shape[0] != b
            or cond.context.shape[2:] != x.shape[2:]
        ):
            raise ValueError(
                f"cond.context must be (B, Tc, C, H, W) = ({b}, Tc, {c}, {h}, {w}), "
                f"got {tuple(cond.context.shape)}"
            )
        n_frames = tc + t
        expect = {
            "frames": (self.frame_channels, (b, n_frames, self.frame_channels, h, w)),
            "aux": (self.aux_channels, (b, n_frames, self.aux_channels, h, w)),
            "frame_features": (self.frame_features, (b, n_frames, self.frame_features)),
            "vector": (self.vector_dim, (b, self.vector_dim)),
        }
        for name, (width, shape) in expect.items():
            value = getattr(cond, name)
            if width and value is None:
                raise ValueError(
                    f"this network was built with {name} of width {width}; pass "
                    f"cond.{name} of shape {shape}"
                )
            if not width and value is not None:
                raise ValueError(
                    f"cond.{name} was given but the network was built without it "
                    f"(set the matching constructor width)"
                )
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(
                    f"cond.{name} must have shape {shape} (L = Tc + T = {n_frames} "
                    f"frames, context first), got {tuple(value.shape)}"
                )
        if cond.times is not None and tuple(cond.times.shape) != (b, n_frames):
            raise ValueError(
                f"cond.times must have shape ({b}, {n_frames}), got {tuple(cond.times.shape)}"
            )
        return cond

    def _patches(self, conv: nn.Module, z: Tensor) -> Tensor:
        """(B, L, Cin, H, W) -> (B, L, N, Dout) by a strided convolution per frame."""
        b, n_frames = z.shape[:2]
        out = conv(z.flatten(0, 1))
        return out.flatten(2).transpose(1, 2).reshape(b, n_frames, -1, out.shape[1])

    def _unpatch(self, tokens: Tensor, grid: tuple[int, int], ch: int) -> Tensor:
        """(B, T, N, p*p*ch) -> (B, T, ch, H, W)."""
        b, t = tokens.shape[:2]
        p, (gh, gw) = self.patch_size, grid
        z = tokens.reshape(b, t, gh, gw, ch, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return z.reshape(b, t, ch, gh * p, gw * p)

    def _space_positions(self, grid: tuple[int, int], like: Tensor) -> Tensor:
        gh, gw = grid
        ys, xs = torch.meshgrid(
            torch.arange(gh, device=like.device),
            torch.arange(gw, device=like.device),
            indexing="ij",
        )
        pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=-1).to(like.dtype)
        delta = pos[:, None, :] - pos[None, :, :]  # (N, N, 2)
        return torch.sign(delta) * torch.log1p(delta.abs())

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        cond: SpaceTimeCondition | None = None,
        batch: Tensor | None = None,
    ) -> Tensor:
        if batch is not None:
            raise ValueError(
                "SpaceTimeTransformer works on dense (B, T, C, H, W) data; batch must be None"
            )
        cond = self._check(x, cond)
        b, n_t, ch, height, width = x.shape
        p = self.patch_size
        grid = (height // p, width // p)
        t = per_sample_time(t, b, like=x)
        frames = x if cond.context is None else torch.cat([cond.context, x], dim=1)
        n_ctx = frames.shape[1] - n_t
        inp = frames if cond.frames is None else torch.cat([frames, cond.frames.to(x.dtype)], 2)
        h = self._patches(self.embed, inp)  # (B, L, N, D)
        kind = torch.cat([self.kind[0].expand(n_ctx, -1), self.kind[1].expand(n_t, -1)])
        h = h + kind[None, :, None, :].to(x.dtype)
        h = h + _sincos_2d(*grid, self.dim, dtype=x.dtype, device=x.device)[None, None]
        times = cond.times
        if times is None:
            times = torch.arange(n_ctx + n_t, device=x.device, dtype=x.dtype).expand(b, -1)
        times = times.to(x.dtype)
        h = h + self.frame_time_proj(self.frame_time(times).to(x.dtype))[:, :, None, :]
        if self.features_proj is not None:
            h = h + self.features_proj(cond.frame_features.to(x.dtype))[:, :, None, :]
        c = self.flow_mlp(self.flow_time(t).to(x.dtype))
        if self.vector_proj is not None:
            c = c + self.vector_proj(cond.vector.to(x.dtype))
        c = F.silu(c)
        cond_tokens = aux_tokens = space_pos = time_pos = None
        if self.cond_embed is not None:
            parts = [z for z in (cond.frames, cond.aux) if z is not None]
            cond_tokens = self._patches(self.cond_embed, torch.cat(parts, 2).to(x.dtype))
        if self.stm:
            if self.aux_embed is not None:
                aux_tokens = self._patches(self.aux_embed, cond.aux.to(x.dtype))
            space_pos = self._space_positions(grid, x)
            dt = times[:, :, None] - times[:, None, :]  # (B, L, L)
            time_pos = self.delta_time(dt).to(x.dtype)[:, None]  # (B, 1, L, L, 16)
        for block in self.blocks:
            h = block(
                h,
                c,
                grid=grid,
                cond_tokens=cond_tokens,
                aux_tokens=aux_tokens,
                space_pos=space_pos,
                time_pos=time_pos,
            )
        h = h[:, n_ctx:]
        shift, scale = self.final_ada(c)[:, None, None, :].chunk(2, dim=-1)
        u = F.layer_norm(h, h.shape[-1:], eps=1e-6) * (1 + scale) + shift
        out = self._unpatch(self.out(u), grid, ch)
        if self.pixel_head:
            feats = self._unpatch(self.pixel_features(u), grid, self.pixel_head)
            parts = [feats, x]
            if cond.frames is not None:
                parts.append(cond.frames[:, n_ctx:].to(x.dtype))
            out = out + self.pixel_net(torch.cat(parts, 2).flatten(0, 1)).reshape(out.shape)
        return out

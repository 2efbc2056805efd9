"""Synthetic sprite videos with genuinely multimodal futures and exact ground truth.

A clip shows ``num_sprites`` coloured shapes (square, disc, diamond) moving over a smooth textured
background. At every frame transition each sprite first turns by one of ``turn_angles`` (straight,
left, right by default) drawn with the known probabilities ``turn_probs``, then moves ``speed``
pixels, bouncing elastically off the frame border:

    v_{t+1} = R(theta_k) v_t  with  P(k) = turn_probs[k],      p_{t+1} = reflect(p_t + v_{t+1})

Headings therefore follow a Markov chain, so after the context frames the future is a tree: h
future steps of S sprites give len(turn_angles)^(h * S) branches, each with probability the product
of its turn probabilities, and every branch can be rendered exactly (:func:`make_forecast_set`).

Every frame comes with a segmentation (0 = background, 1 + shape index for a sprite) and a depth
map: the background is a ground plane whose depth falls linearly from ``far`` (top row) to ``near``
(bottom row); a sprite stands upright on the ground, so its depth is the ground's depth at its base
row (its lowest row), and nearer sprites occlude farther ones.

Shapes: frames (N, T, 3, S, S) float32 in [0, 1]; segmentation (N, T, S, S) int64; depth
(N, T, S, S) float32; turns (N, T - 1, num_sprites) int64 (the turn taken before frame t + 1).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SHAPES",
    "SpriteConfig",
    "SpriteClips",
    "BranchFutures",
    "make_sprite_clips",
    "make_forecast_set",
    "branch_turns",
]

SHAPES: tuple[str, ...] = ("square", "disc", "diamond")
"""Sprite shapes; a sprite of shape i has segmentation label i + 1 (0 is the background)."""

_SHAPE_RGB = np.array([[0.92, 0.22, 0.18], [0.20, 0.82, 0.30], [0.25, 0.35, 0.95]])
_EXTENT = np.array([0.85, 1.0, 1.25])  # half-height of each shape in units of its radius


@dataclass(frozen=True, kw_only=True)
class SpriteConfig:
    """How sprite clips look and move (keyword-only, immutable).

    size: frame side in pixels. num_sprites: moving sprites per clip. speed: pixels per frame.
    radius: (low, high) range of the sprite radius in pixels. turn_angles: the turns in degrees
    (counter-clockwise in image coordinates, y down). turn_probs: their probabilities (sum 1).
    near, far: depth of the bottom and top rows of the ground plane.
    """

    size: int = 32
    num_sprites: int = 1
    speed: float = 4.0
    radius: tuple[float, float] = (3.5, 5.0)
    turn_angles: tuple[float, ...] = (0.0, 90.0, -90.0)
    turn_probs: tuple[float, ...] = (0.6, 0.25, 0.15)
    near: float = 2.0
    far: float = 8.0

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 8:
            raise ValueError(f"SpriteConfig.size={self.size!r}; expected an integer >= 8")
        if not isinstance(self.num_sprites, int) or self.num_sprites < 1:
            raise ValueError(f"SpriteConfig.num_sprites={self.num_sprites!r}; expected >= 1")
        lo, hi = self.radius
        if not (0 < lo <= hi < self.size / 4):
            raise ValueError(f"SpriteConfig.radius={self.radius!r}; expected 0 < low <= high < "
                             f"size / 4 = {self.size / 4}")
        if not (0 < self.speed < self.size / 2 - hi):
            raise ValueError(f"SpriteConfig.speed={self.speed!r}; expected 0 < speed < "
                             f"size / 2 - radius_high = {self.size / 2 - hi}")
        if len(self.turn_angles) != len(self.turn_probs) or not self.turn_angles:
            raise ValueError(f"SpriteConfig.turn_angles ({len(self.turn_angles)}) and turn_probs "
                             f"({len(self.turn_probs)}) must be non-empty and of one length")
        if any(p < 0 for p in self.turn_probs) or abs(sum(self.turn_probs) - 1.0) > 1e-9:
            raise ValueError(f"SpriteConfig.turn_probs={self.turn_probs!r}; expected "
                             "non-negative probabilities summing to 1")
        if not 0 < self.near < self.far:
            raise ValueError(f"need 0 < near < far, got near={self.near}, far={self.far}")

    @property
    def num_classes(self) -> int:
        """Segmentation classes: the background and one per shape."""
        return 1 + len(SHAPES)


@dataclass(frozen=True)
class SpriteClips:
    """Rendered clips with per-frame ground truth (shapes in the module docstring)."""

    frames: Tensor
    segmentation: Tensor
    depth: Tensor
    turns: Tensor
    config: SpriteConfig


@dataclass(frozen=True)
class BranchFutures:
    """Every possible future of a set of clips after their context frames, rendered exactly.

    frames (N, B, H, 3, S, S), segmentation and depth (N, B, H, S, S) for B branches of H steps;
    probs (B,) the known probability of each branch (the same for every clip); turns (B, H, S)
    the turn indices of each branch; realised (N,) the branch each clip actually took.
    """

    frames: Tensor
    segmentation: Tensor
    depth: Tensor
    probs: Tensor
    turns: Tensor
    realised: Tensor


@dataclass
class _State:
    pos: np.ndarray  # (N, S, 2) x, y in pixels
    vel: np.ndarray  # (N, S, 2)
    radius: np.ndarray  # (N, S)
    shape: np.ndarray  # (N, S) int
    color: np.ndarray  # (N, S, 3)
    background: np.ndarray  # (N, 3, H, W)

    def take(self, index: np.ndarray) -> _State:
        return _State(self.pos[index].copy(), self.vel[index].copy(), self.radius[index],
                      self.shape[index], self.color[index], self.background[index])


def _initial_state(n: int, cfg: SpriteConfig, rng: np.random.Generator) -> _State:
    s, k = cfg.size, cfg.num_sprites
    radius = rng.uniform(cfg.radius[0], cfg.radius[1], size=(n, k))
    margin = cfg.radius[1] + 1.0
    pos = rng.uniform(margin, s - margin, size=(n, k, 2))
    heading = rng.uniform(0.0, 2 * math.pi, size=(n, k))
    vel = cfg.speed * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    shape = rng.integers(0, len(SHAPES), size=(n, k))
    color = np.clip(_SHAPE_RGB[shape] + rng.uniform(-0.08, 0.08, size=(n, k, 3)), 0.0, 1.0)
    # smooth background: a base colour and two sinusoidal gratings per clip
    yy, xx = np.meshgrid(np.arange(s) + 0.5, np.arange(s) + 0.5, indexing="ij")
    base = rng.uniform(0.25, 0.55, size=(n, 3, 1, 1))
    bg = np.broadcast_to(base, (n, 3, s, s)).copy()
    for _ in range(2):
        freq = rng.uniform(0.5, 2.5, size=(n, 1, 1, 1)) * 2 * math.pi / s
        ang = rng.uniform(0, math.pi, size=(n, 1, 1, 1))
        phase = rng.uniform(0, 2 * math.pi, size=(n, 1, 1, 1))
        amp = rng.uniform(0.03, 0.12, size=(n, 3, 1, 1))
        bg += amp * np.sin(freq * (np.cos(ang) * xx + np.sin(ang) * yy) + phase)
    return _State(pos, vel, radius, shape, color, np.clip(bg, 0.0, 1.0))


def _step(state: _State, turns: np.ndarray, cfg: SpriteConfig) -> None:
    """Turn each sprite by turn_angles[turns] (N, S), move, and bounce off the border, in place."""
    theta = np.deg2rad(np.asarray(cfg.turn_angles))[turns]
    c, s_ = np.cos(theta), np.sin(theta)
    vx, vy = state.vel[..., 0], state.vel[..., 1]
    state.vel = np.stack([c * vx - s_ * vy, s_ * vx + c * vy], axis=-1)
    pos = state.pos + state.vel
    lo, hi = state.radius[..., None], cfg.size - state.radius[..., None]
    below, above = pos < lo, pos > hi
    pos = np.where(below, 2 * lo - pos, np.where(above, 2 * hi - pos, pos))
    state.vel = np.where(below | above, -state.vel, state.vel)
    state.pos = pos


def _ground_depth(cfg: SpriteConfig, y: np.ndarray) -> np.ndarray:
    return cfg.far + (cfg.near - cfg.far) * y / cfg.size


def _render(state: _State, cfg: SpriteConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 3, S, S) rgb, (N, S, S) labels, (N, S, S) depth of the current state."""
    n, s = state.pos.shape[0], cfg.size
    ys = np.arange(s) + 0.5
    rgb = state.background.copy()
    label = np.zeros((n, s, s), dtype=np.int64)
    depth = np.broadcast_to(_ground_depth(cfg, ys)[None, :, None], (n, s, s)).copy()
    base = state.pos[..., 1] + _EXTENT[state.shape] * state.radius
    sprite_depth = _ground_depth(cfg, base)  # (N, S)
    order = np.argsort(-sprite_depth, axis=1, kind="stable")  # far first, near drawn last
    rows = np.arange(n)
    for rank in range(state.pos.shape[1]):
        j = order[:, rank]
        px, py = state.pos[rows, j, 0], state.pos[rows, j, 1]
        r, shape = state.radius[rows, j], state.shape[rows, j]
        dx = ys[None, None, :] - px[:, None, None]
        dy = ys[None, :, None] - py[:, None, None]
        square = np.maximum(np.abs(dx), np.abs(dy)) <= _EXTENT[0] * r[:, None, None]
        disc = dx**2 + dy**2 <= ((_EXTENT[1] * r) ** 2)[:, None, None]
        diamond = np.abs(dx) + np.abs(dy) <= _EXTENT[2] * r[:, None, None]
        mask = np.where(shape[:, None, None] == 0, square,
                        np.where(shape[:, None, None] == 1, disc, diamond))
        rgb = np.where(mask[:, None], state.color[rows, j][:, :, None, None], rgb)
        label = np.where(mask, shape[:, None, None] + 1, label)
        depth = np.where(mask, sprite_depth[rows, j][:, None, None], depth)
    return rgb, label, depth


def _to_tensors(rgb: list[np.ndarray], label: list[np.ndarray], depth: list[np.ndarray],
                axis: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    return (torch.from_numpy(np.stack(rgb, axis=axis).astype(np.float32)),
            torch.from_numpy(np.stack(label, axis=axis)),
            torch.from_numpy(np.stack(depth, axis=axis).astype(np.float32)))


def _check_count(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}={value!r}; expected an integer >= {low}")


def _simulate(n: int, length: int, cfg: SpriteConfig, rng: np.random.Generator
              ) -> tuple[SpriteClips, _State]:
    state = _initial_state(n, cfg, rng)
    turns = rng.choice(len(cfg.turn_probs), p=np.asarray(cfg.turn_probs),
                       size=(n, length - 1, cfg.num_sprites))
    rgbs, labels, depths = [], [], []
    for t in range(length):
        if t > 0:
            _step(state, turns[:, t - 1], cfg)
        rgb, label, depth = _render(state, cfg)
        rgbs.append(rgb), labels.append(label), depths.append(depth)
    frames, seg, dep = _to_tensors(rgbs, labels, depths)
    clips = SpriteClips(frames=frames, segmentation=seg, depth=dep,
                        turns=torch.from_numpy(turns.astype(np.int64)), config=cfg)
    return clips, state


def make_sprite_clips(n: int, length: int, *, config: SpriteConfig | None = None,
                      seed: int = 0) -> SpriteClips:
    """Render ``n`` clips of ``length`` frames; the same seed gives the same clips.

    Example
    -------
    >>> clips = make_sprite_clips(4, 6, seed=1)
    >>> tuple(clips.frames.shape), tuple(clips.turns.shape)
    ((4, 6, 3, 32, 32), (4, 5, 1))
    """
    _check_count("n", n, 1)
    _check_count("length", length, 1)
    cfg = config if config is not None else SpriteConfig()
    clips, _ = _simulate(n, length, cfg, np.random.default_rng(seed))
    return clips


def branch_turns(config: SpriteConfig, horizon: int) -> tuple[Tensor, Tensor]:
    """All turn sequences of ``horizon`` steps and their probabilities.

    Branch b's turns are (horizon, num_sprites) indices in row-major (time, sprite) order, so
    branch index = sum_i turn_i * A^(L - 1 - i) over the flattened sequence (A turn angles,
    L = horizon * num_sprites). P(b) = prod_i turn_probs[turn_i].

    Returns turns (B, horizon, num_sprites) int64 and probs (B,) float64.
    """
    _check_count("horizon", horizon, 1)
    a, length = len(config.turn_angles), horizon * config.num_sprites
    if a**length > 4096:
        raise ValueError(f"{a}^{length} = {a**length} branches (horizon={horizon}, "
                         f"num_sprites={config.num_sprites}) are too many to enumerate; "
                         "shorten the horizon or use fewer sprites")
    seqs = np.array(list(itertools.product(range(a), repeat=length)), dtype=np.int64)
    probs = np.prod(np.asarray(config.turn_probs)[seqs], axis=1)
    return (torch.from_numpy(seqs.reshape(-1, horizon, config.num_sprites)),
            torch.from_numpy(probs))


def make_forecast_set(n: int, *, context: int, horizon: int, config: SpriteConfig | None = None,
                      seed: int = 0) -> tuple[SpriteClips, BranchFutures]:
    """Clips of ``context + horizon`` frames plus every future branch after their context.

    The clips' last ``horizon`` frames are one realised branch; ``BranchFutures.frames[i,
    realised[i]]`` equals them exactly. Rendering all branches costs N * B * H frames.
    """
    _check_count("context", context, 1)
    cfg = config if config is not None else SpriteConfig()
    seqs, probs = branch_turns(cfg, horizon)
    _check_count("n", n, 1)
    rng = np.random.default_rng(seed)
    clips, state = _simulate(n, context, cfg, rng)
    fut_turns = rng.choice(len(cfg.turn_probs), p=np.asarray(cfg.turn_probs),
                           size=(n, horizon, cfg.num_sprites))
    a = len(cfg.turn_angles)
    flat = fut_turns.reshape(n, -1)
    realised = (flat * a ** np.arange(flat.shape[1] - 1, -1, -1)).sum(axis=1)
    # every branch of every clip: state replicated B times
    nb = seqs.shape[0]
    branch_state = state.take(np.repeat(np.arange(n), nb))
    seq_np = np.tile(seqs.numpy(), (n, 1, 1))  # (N * B, H, S)
    rgbs, labels, depths = [], [], []
    for h in range(horizon):
        _step(branch_state, seq_np[:, h], cfg)
        rgb, label, depth = _render(branch_state, cfg)
        rgbs.append(rgb), labels.append(label), depths.append(depth)
    frames, seg, dep = _to_tensors(rgbs, labels, depths)
    s = cfg.size
    frames = frames.reshape(n, nb, horizon, 3, s, s)
    seg, dep = seg.reshape(n, nb, horizon, s, s), dep.reshape(n, nb, horizon, s, s)
    idx = torch.from_numpy(realised.astype(np.int64))
    rows = torch.arange(n)
    full = SpriteClips(
        frames=torch.cat([clips.frames, frames[rows, idx]], dim=1),
        segmentation=torch.cat([clips.segmentation, seg[rows, idx]], dim=1),
        depth=torch.cat([clips.depth, dep[rows, idx]], dim=1),
        turns=torch.cat([clips.turns, torch.from_numpy(fut_turns.astype(np.int64))], dim=1),
        config=cfg)
    futures = BranchFutures(frames=frames, segmentation=seg, depth=dep, probs=probs, turns=seqs,
                            realised=idx)
    return full, futures

"""Sprite videos: exact branch ground truth, known probabilities, consistent per-frame truth."""

import math

import pytest
import torch

from sciflow.datasets.sprites import (
    SpriteConfig,
    branch_turns,
    make_forecast_set,
    make_sprite_clips,
)


def test_same_seed_same_clips_other_seed_differs():
    a = make_sprite_clips(6, 4, seed=3)
    b = make_sprite_clips(6, 4, seed=3)
    c = make_sprite_clips(6, 4, seed=4)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.turns, b.turns)
    assert not torch.equal(a.frames, c.frames)
    assert a.frames.shape == (6, 4, 3, 32, 32) and a.frames.dtype == torch.float32
    assert float(a.frames.min()) >= 0 and float(a.frames.max()) <= 1


def test_realised_future_is_exactly_its_branch():
    clips, fut = make_forecast_set(5, context=3, horizon=2, seed=1)
    rows = torch.arange(5)
    assert torch.equal(fut.frames[rows, fut.realised], clips.frames[:, 3:])
    assert torch.equal(fut.segmentation[rows, fut.realised], clips.segmentation[:, 3:])
    assert torch.equal(fut.depth[rows, fut.realised], clips.depth[:, 3:])
    # the branch index encodes the realised turn sequence
    assert torch.equal(fut.turns[fut.realised], clips.turns[:, 2:])


def test_branches_share_the_context_and_differ_in_the_future():
    _, fut = make_forecast_set(4, context=2, horizon=2, seed=2)
    assert fut.frames.shape[:3] == (4, 9, 2)
    first = fut.frames[:, :, 0]  # branches with the same first turn share the first frame
    for g in range(3):
        grp = first[:, 3 * g:3 * g + 3]
        assert torch.equal(grp[:, 0], grp[:, 1]) and torch.equal(grp[:, 0], grp[:, 2])
    assert not torch.equal(first[:, 0], first[:, 3])


def test_branch_probabilities_are_products_of_turn_probabilities():
    cfg = SpriteConfig(turn_probs=(0.5, 0.3, 0.2))
    turns, probs = branch_turns(cfg, 3)
    assert turns.shape == (27, 3, 1)
    assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-12)
    expect = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)[turns[..., 0]].prod(dim=1)
    assert torch.allclose(probs, expect)
    assert torch.equal(turns[0, :, 0], torch.tensor([0, 0, 0]))
    assert torch.equal(turns[5, :, 0], torch.tensor([0, 1, 2]))  # row-major: 5 = 0*9 + 1*3 + 2


def test_turn_frequencies_match_the_known_probabilities():
    cfg = SpriteConfig(turn_probs=(0.6, 0.25, 0.15), size=16, radius=(2.0, 3.0), speed=2.0)
    clips = make_sprite_clips(3000, 2, config=cfg, seed=0)
    freq = torch.bincount(clips.turns.reshape(-1), minlength=3).double() / 3000
    sd = torch.sqrt(torch.tensor([0.6 * 0.4, 0.25 * 0.75, 0.15 * 0.85]) / 3000)
    assert bool(((freq - torch.tensor([0.6, 0.25, 0.15])).abs() < 5 * sd).all())


def test_segmentation_and_depth_agree_with_the_scene():
    cfg = SpriteConfig(num_sprites=2)
    clips = make_sprite_clips(20, 5, config=cfg, seed=5)
    seg, depth = clips.segmentation, clips.depth
    rows = (torch.arange(32) + 0.5).reshape(1, 1, 32, 1)
    ground = (cfg.far + (cfg.near - cfg.far) * rows / 32).expand_as(depth)
    bg = seg == 0
    assert torch.allclose(depth[bg], ground[bg])
    assert bool((depth[~bg] <= ground[~bg] + 1e-5).all())  # an upright sprite is never behind
    assert int(seg.max()) <= 3 and int(seg.min()) >= 0
    # bouncing keeps every sprite in the frame: every frame shows some sprite pixels
    assert bool((seg.flatten(2) > 0).any(dim=2).all())


def test_straight_motion_moves_each_frame_by_the_speed():
    cfg = SpriteConfig(turn_probs=(1.0, 0.0, 0.0), size=64, speed=3.0, radius=(4.0, 4.0))
    clips = make_sprite_clips(30, 3, config=cfg, seed=0)
    ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    mask = (clips.segmentation > 0).double()
    cy = (mask * ys).sum((-1, -2)) / mask.sum((-1, -2))
    cx = (mask * xs).sum((-1, -2)) / mask.sum((-1, -2))
    step = torch.sqrt((cy[:, 1:] - cy[:, :-1]) ** 2 + (cx[:, 1:] - cx[:, :-1]) ** 2)
    # a bounce shortens the displacement; without one the centroid moves by the speed
    assert float(step.median()) == pytest.approx(3.0, abs=0.35)
    assert float(step.max()) <= 3.0 + 1.0  # pixel discretisation of the mask


@pytest.mark.parametrize("kwargs, word", [
    ({"turn_probs": (0.5, 0.5, 0.5)}, "turn_probs"),
    ({"turn_angles": (0.0, 90.0)}, "turn_angles"),
    ({"radius": (4.0, 9.0)}, "radius"),
    ({"speed": 0.0}, "speed"),
    ({"num_sprites": 0}, "num_sprites"),
])
def test_bad_configs_are_refused_by_name(kwargs, word):
    with pytest.raises(ValueError, match=word):
        SpriteConfig(**kwargs)


def test_too_many_branches_and_bad_counts_are_refused():
    with pytest.raises(ValueError, match="too many"):
        branch_turns(SpriteConfig(num_sprites=3), 4)
    with pytest.raises(ValueError, match="length"):
        make_sprite_clips(2, 0)
    with pytest.raises(ValueError, match="context"):
        make_forecast_set(2, context=0, horizon=1)

"""Decoder heads: shapes, chunked decoding, learning from features, position awareness."""

import pytest
import torch

from sciflow.domains.feature_forecasting.heads import DecoderHeads, HeadTargets, fit_heads


def test_head_output_shapes_and_ranges():
    heads = DecoderHeads(6, patch_size=4, num_classes=3)
    out = heads(torch.randn(2, 6, 3, 5))
    assert out.segmentation.shape == (2, 3, 12, 20)
    assert out.depth.shape == (2, 12, 20) and bool((out.depth > 0).all())
    rgb = out.rgb.detach()
    assert rgb.shape == (2, 3, 12, 20) and 0 <= float(rgb.min()) <= float(rgb.max()) <= 1
    rgb_only = DecoderHeads(6, patch_size=2, outputs=("rgb",))(torch.randn(1, 6, 2, 2))
    assert rgb_only.segmentation is None and rgb_only.depth is None


def test_chunked_decode_equals_one_pass_with_leading_dims():
    torch.manual_seed(0)
    heads = DecoderHeads(5, patch_size=2, num_classes=4).eval()
    f = torch.randn(2, 3, 5, 4, 4)
    dec = heads.decode(f, batch_size=4)
    direct = heads(f.flatten(0, 1))
    assert dec.segmentation.shape == (2, 3, 8, 8)
    assert torch.equal(dec.segmentation.flatten(0, 1), direct.segmentation.argmax(1))
    assert torch.allclose(dec.depth.flatten(0, 1), direct.depth)


def test_heads_learn_position_dependent_depth_from_position_free_features():
    # constant features everywhere: only the coordinates tell rows apart
    m = 32
    feats = torch.ones(m, 3, 4, 4) + 0.01 * torch.randn(m, 3, 4, 4)
    rows = torch.linspace(1.0, 4.0, 8)[None, :, None].expand(m, 8, 8).contiguous()
    heads = DecoderHeads(3, patch_size=2, outputs=("depth",), hidden=32)
    fit_heads(heads, HeadTargets(features=feats, depth=rows), steps=300, batch_size=16, lr=5e-3)
    pred = heads(feats[:4]).depth
    assert float(((pred - rows[:4]).abs() / rows[:4]).mean()) < 0.15


def test_bad_head_configs_and_targets():
    with pytest.raises(ValueError, match="outputs"):
        DecoderHeads(4, patch_size=2, outputs=("normals",))
    with pytest.raises(ValueError, match="num_classes"):
        DecoderHeads(4, patch_size=2, outputs=("segmentation",))
    heads = DecoderHeads(4, patch_size=2, outputs=("rgb",))
    with pytest.raises(ValueError, match=r"\(B, 4, h, w\)"):
        heads(torch.randn(1, 5, 2, 2))
    with pytest.raises(ValueError, match="rows"):
        fit_heads(heads, HeadTargets(features=torch.randn(3, 4, 2, 2),
                                     rgb=torch.rand(2, 3, 4, 4)), steps=1)

"""Feature extractors: the filter bank's contract and equivariance, and the DINOv2 loader's
checkpoint layout (real checkpoint test skips when no local file is given)."""

import os
from pathlib import Path

import pytest
import torch

from sciflow.domains.feature_forecasting.dinov2 import (
    CheckpointLayoutError,
    DINOv2Extractor,
    DinoVisionTransformer,
)
from sciflow.domains.feature_forecasting.extractors import (
    FeatureExtractor,
    FilterBankExtractor,
    extract_frames,
    make_extractor,
)


def test_filter_bank_shapes_and_contract():
    fb = FilterBankExtractor(patch_size=4)
    x = torch.rand(3, 3, 32, 48)
    f = fb(x)
    assert f.shape == (3, fb.dim, 8, 12) and fb.grid(32, 48) == (8, 12)
    assert isinstance(fb, FeatureExtractor)
    assert not list(fb.parameters()) and not fb.state_dict()  # nothing learned, nothing stored
    assert torch.isfinite(f).all()


def test_filter_bank_is_equivariant_to_patch_aligned_shifts():
    torch.manual_seed(0)
    fb = FilterBankExtractor(patch_size=4)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 96, 96), 3, stride=1, padding=1)
    shifted = torch.roll(x, shifts=(8, 4), dims=(2, 3))
    f, g = fb(x), fb(shifted)
    # away from the borders (blur support <= 9 px) features move with the image, token for token
    assert torch.allclose(g[..., 6:18, 5:18], f[..., 4:16, 4:17], atol=1e-5)


def test_filter_bank_is_nonlinear():
    fb = FilterBankExtractor()
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert not torch.allclose(fb(0.5 * (a + b)), 0.5 * (fb(a) + fb(b)), atol=1e-4)


@pytest.mark.parametrize("bad, match", [
    (torch.rand(2, 3, 30, 32), "multiple"),
    (torch.rand(2, 1, 32, 32), r"\(B, 3, H, W\)"),
    (torch.randint(0, 255, (2, 3, 32, 32)), "floating"),
])
def test_filter_bank_refuses_bad_images(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FilterBankExtractor()(bad)


def test_extract_frames_keeps_clip_layout():
    fb = FilterBankExtractor()
    frames = torch.rand(2, 3, 3, 16, 16)
    out = extract_frames(fb, frames, batch_size=4)
    assert out.shape == (2, 3, fb.dim, 4, 4)
    assert torch.allclose(out[1, 2], fb(frames[1, 2:3])[0])


# ----------------------------------------------------------------------------- DINOv2


def _official_keys(depth: int) -> set[str]:
    """The tensor names of the released dinov2_*_reg4_pretrain.pth files (MLP variant)."""
    keys = {"cls_token", "pos_embed", "register_tokens", "mask_token", "patch_embed.proj.weight",
            "patch_embed.proj.bias", "norm.weight", "norm.bias"}
    for i in range(depth):
        for name in ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                     "attn.proj.weight", "attn.proj.bias", "ls1.gamma", "norm2.weight",
                     "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                     "mlp.fc2.bias", "ls2.gamma"):
            keys.add(f"blocks.{i}.{name}")
    return keys


def _tiny_vit(**kw):
    torch.manual_seed(0)
    vit = DinoVisionTransformer(dim=32, depth=2, heads=2, patch_size=7, pos_grid=4, registers=4,
                                **kw)
    with torch.no_grad():  # layer scales of a trained model, so blocks matter
        for name, p in vit.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.5)
    return vit


def test_dinov2_state_dict_has_the_official_layout():
    vit = _tiny_vit()
    assert set(vit.state_dict()) == _official_keys(2)
    assert vit.state_dict()["pos_embed"].shape == (1, 1 + 16, 32)
    assert vit.state_dict()["register_tokens"].shape == (1, 4, 32)


def test_dinov2_loads_official_and_wrapped_layouts_bit_exactly(tmp_path):
    vit = _tiny_vit()
    ref = DINOv2Extractor(vit, layers=(0, 1))
    x = torch.rand(2, 3, 28, 21)
    expect = ref(x)
    assert expect.shape == (2, 64, 4, 3)
    flat = tmp_path / "flat.pth"
    torch.save(vit.state_dict(), flat)
    chunked = {("blocks.0." + k[len("blocks."):] if k.startswith("blocks.") else k): v
               for k, v in vit.state_dict().items()}  # FSDP chunk layout: blocks.<chunk>.<i>.
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"teacher": {"backbone." + k: v for k, v in chunked.items()}}, wrapped)
    for path in (flat, wrapped):
        ext = DINOv2Extractor.from_checkpoint(path, layers=(0, 1), heads=2)  # width 32 / 16
        assert ext.vit.num_registers == 4 and ext.vit.patch_size == 7 and ext.vit.depth == 2
        assert torch.equal(ext(x), expect)


def test_dinov2_swiglu_variant_is_read_off_the_tensors(tmp_path):
    vit = _tiny_vit(ffn="swiglu")
    assert "blocks.0.mlp.w12.weight" in vit.state_dict()
    path = tmp_path / "g.pth"
    torch.save(vit.state_dict(), path)
    ext = DINOv2Extractor.from_checkpoint(path, layers=(1,), heads=2)
    x = torch.rand(1, 3, 14, 14)
    assert torch.equal(ext(x), DINOv2Extractor(vit, layers=(1,))(x))


def test_dinov2_registers_shape_the_features_but_are_not_returned():
    vit = _tiny_vit()
    x = torch.rand(1, 3, 28, 28)
    a = DINOv2Extractor(vit, layers=(1,))(x)
    with torch.no_grad():
        vit.register_tokens.add_(1.0)
    b = DINOv2Extractor(vit, layers=(1,))(x)
    assert a.shape == b.shape == (1, 32, 4, 4)
    assert not torch.allclose(a, b)


def test_dinov2_position_embedding_native_and_resized():
    vit = _tiny_vit()
    assert vit.position_embedding(4, 4) is vit.pos_embed
    pe = vit.position_embedding(6, 3)
    assert pe.shape == (1, 1 + 18, 32)
    assert torch.equal(pe[:, 0], vit.pos_embed[:, 0])  # the class position is never resized


def test_dinov2_default_layers_and_grid():
    vit = DinoVisionTransformer(dim=64, depth=12, heads=1, patch_size=14, pos_grid=2)
    ext = DINOv2Extractor(vit, grid=(2, 3))
    assert ext.layers == (2, 5, 8, 11) and ext.dim == 256  # VFMF's layers of ViT-B
    assert ext(torch.rand(1, 3, 40, 50)).shape == (1, 256, 2, 3)


def test_dinov2_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DINOv2Extractor.from_checkpoint(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    torch.save({"weight": torch.zeros(3)}, junk)
    with pytest.raises(CheckpointLayoutError, match="missing"):
        DINOv2Extractor.from_checkpoint(junk)
    wrong_heads = tmp_path / "h.pth"
    torch.save(_tiny_vit().state_dict(), wrong_heads)
    with pytest.raises(ValueError, match="divisible"):
        DINOv2Extractor.from_checkpoint(wrong_heads, heads=3)
    state = _tiny_vit().state_dict()
    state["blocks.0.extra"] = torch.zeros(1)
    odd = tmp_path / "odd.pth"
    torch.save(state, odd)
    with pytest.raises(CheckpointLayoutError, match="unexpected"):
        DINOv2Extractor.from_checkpoint(odd)
    with pytest.raises(ValueError, match="checkpoint"):
        make_extractor("dinov2")
    with pytest.raises(ValueError, match="unknown extractor"):
        make_extractor("clip")


REAL = os.environ.get("SCIFLOW_DINOV2_CHECKPOINT", "")


@pytest.mark.skipif(not REAL or not Path(REAL).is_file(),
                    reason="set SCIFLOW_DINOV2_CHECKPOINT to a local dinov2_*_pretrain.pth")
def test_real_dinov2_checkpoint_loads_and_gives_concatenated_features():
    ext = DINOv2Extractor.from_checkpoint(REAL, grid=(8, 8))
    f = ext(torch.rand(2, 3, 64, 64))
    assert f.shape == (2, 4 * ext.vit.dim, 8, 8)
    assert torch.isfinite(f).all()
    # each block's map went through the final LayerNorm: per-token mean ~ the norm's bias mean
    assert ext.vit.num_registers in (0, 4)


def test_default_vit_matches_the_released_vitb14_reg4_shapes():
    shapes = {k: tuple(v.shape) for k, v in DinoVisionTransformer().state_dict().items()}
    assert shapes["pos_embed"] == (1, 1370, 768)  # 518 px / 14 = 37 patches a side, plus cls
    assert shapes["register_tokens"] == (1, 4, 768)
    assert shapes["patch_embed.proj.weight"] == (768, 3, 14, 14)
    assert shapes["blocks.11.attn.qkv.weight"] == (2304, 768)
    assert shapes["blocks.11.mlp.fc1.weight"] == (3072, 768)
    assert shapes["blocks.11.ls2.gamma"] == (768,)
    assert set(shapes) == _official_keys(12)


def test_dinov2_names_still_import_from_extractors():
    from sciflow.domains.feature_forecasting import extractors

    assert extractors.DINOv2Extractor is DINOv2Extractor
    assert extractors.CheckpointLayoutError is CheckpointLayoutError
    with pytest.raises(AttributeError, match="no attribute"):
        extractors.NoSuchExtractor  # noqa: B018

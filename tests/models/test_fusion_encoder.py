"""Fusion changes only flagged tokens, by the published formula; the image encoder freezes what it should."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dp_cli.errors import ConfigError
from dp_models.fusion import FusionModule
from dp_models.image_encoder import ReferenceImageEncoder, preprocess_reference


def _reference_fuse(f: FusionModule, tok, img):
    def mlp(m, x, residual):
        y = m.fc2(F.gelu(m.fc1(F.layer_norm(x, x.shape[-1:], m.layernorm.weight, m.layernorm.bias))))
        return y + x if residual else y

    h = mlp(f.mlp1, torch.cat([tok, img], -1), False) + tok
    return F.layer_norm(mlp(f.mlp2, h, True), h.shape[-1:], f.layer_norm.weight, f.layer_norm.bias)


def test_fusion_changes_only_flagged_tokens_by_formula():
    torch.manual_seed(0)
    fusion = FusionModule(text_dim=16, image_dim=8)
    text, images = torch.randn(2, 10, 16), torch.randn(2, 3, 8)
    positions = torch.tensor([[2, 5, -1], [-1, -1, -1]])
    out = fusion(text, images, positions)
    changed = (out != text).any(-1)
    assert changed.nonzero().tolist() == [[0, 2], [0, 5]]
    for a, p in ((0, 2), (1, 5)):
        torch.testing.assert_close(out[0, p], _reference_fuse(fusion, text[0, p], images[0, a]))
    out.sum().backward()  # gradients reach the fusion weights
    assert fusion.mlp1.fc1.weight.grad.abs().sum() > 0


def test_fusion_save_load(tmp_path):
    fusion = FusionModule(text_dim=16, image_dim=8)
    fusion.save_pretrained(tmp_path / "fusion")
    loaded = FusionModule.from_pretrained(tmp_path / "fusion")
    x, i, p = torch.randn(1, 4, 16), torch.randn(1, 1, 8), torch.tensor([[1]])
    torch.testing.assert_close(loaded(x, i, p), fusion(x, i, p))


def test_image_encoder_trainable_layers(tiny_dir):
    enc = ReferenceImageEncoder.from_pretrained(str(tiny_dir / "clip-vision"), trainable_layers=2)
    layers = enc.vision.vision_model.encoder.layers
    assert [any(p.requires_grad for p in layer.parameters()) for layer in layers] == [False, True, True]
    assert not enc.vision.vision_model.embeddings.patch_embedding.weight.requires_grad
    pix = torch.randn(2, 3, 3, enc.image_size, enc.image_size)
    valid = torch.tensor([[True, False, True], [False, False, False]])
    out = enc(pix, valid)
    assert out.shape == (2, 3, enc.embed_dim)
    assert out[~valid].abs().sum() == 0 and out[valid].abs().sum() > 0
    torch.testing.assert_close(out[0, 2], enc(pix[:1, 2:3])[0, 0])
    with pytest.raises(ConfigError, match="trainable_layers = 4.*has 3 layers"):
        enc.set_trainable_layers(4)


def test_image_encoder_zero_trainable_layers_is_the_whole_encoder_none_is_frozen(tiny_dir):
    enc = ReferenceImageEncoder.from_pretrained(str(tiny_dir / "clip-vision"), trainable_layers=0)
    assert all(p.requires_grad for p in enc.parameters())  # embeddings and pre-LayerNorm included
    assert enc.vision.vision_model.pre_layrnorm.weight.requires_grad
    enc.set_trainable_layers(None)
    assert not any(p.requires_grad for p in enc.parameters())


def test_preprocess_reference_matches_processor(tiny_dir):
    import numpy as np
    from transformers import CLIPImageProcessorPil

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ours = preprocess_reference(img, 32)
    theirs = CLIPImageProcessorPil.from_pretrained(tiny_dir / "clip-vision")(images=[img], return_tensors="pt")
    torch.testing.assert_close(ours, theirs["pixel_values"], atol=1e-4, rtol=1e-4)


def test_saved_preprocessor_reproduces_dp_pixels_on_non_square_references(tiny_dir, tmp_path):
    """A 64x32 crop: shortest-edge + centre crop would cut it; dp squashes it, and so must the saved config."""
    import numpy as np

    from dp_models.image_encoder import clip_image_processor_class

    enc = ReferenceImageEncoder.from_pretrained(str(tiny_dir / "clip-vision"), trainable_layers=None)
    enc.save_pretrained(tmp_path / "enc")
    img = np.random.default_rng(1).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    theirs = clip_image_processor_class().from_pretrained(tmp_path / "enc")(images=[img], return_tensors="pt")
    assert torch.equal(preprocess_reference(img, enc.image_size, enc.mean, enc.std), theirs["pixel_values"])

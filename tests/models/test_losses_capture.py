"""Losses on hand cases; the capture processor matches a plain attention computation."""

from __future__ import annotations

import pytest
import torch

from models.attention_capture import install_capture, middle_blocks, uninstall_capture
from models.losses import balanced_l1, denoising_loss, localization_loss


def test_denoising_loss_plain_and_masked():
    pred, target = torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    target[0, :, 0, 0] = 2.0  # error 4 in one pixel of two channels
    assert denoising_loss(pred, target).item() == pytest.approx(8 / 8)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert denoising_loss(pred, target, mask).item() == pytest.approx(4.0)
    assert denoising_loss(pred, target, 1 - mask).item() == pytest.approx(0.0)
    big = torch.zeros(1, 4, 4)
    big[0, :2, :2] = 1  # a mask at twice the resolution is averaged down
    assert denoising_loss(pred, target, big).item() == pytest.approx(4.0)


def test_balanced_l1_hand_case():
    probs = torch.tensor([[[0.4, 0.4, 0.1, 0.1]]])
    masks = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    assert balanced_l1(probs, masks).item() == pytest.approx(0.1 - 0.4, abs=1e-4)
    assert balanced_l1(probs, masks, normalize=True).item() == pytest.approx(0.25 - 1.0, abs=1e-3)


def test_localization_loss_ignores_invalid_and_averages_layers():
    masks = torch.zeros(1, 2, 4, 4)
    masks[0, 0, :2] = 1
    good = torch.zeros(1, 2, 4, 4)
    good[0, 0, :2] = 1 / 8  # all mass inside the mask
    good[0, 1] = 5.0  # attribute 1 is invalid: must not count
    valid = torch.tensor([[True, False]])
    loss = localization_loss([good, (good.flatten(2), (4, 4))], masks, valid)
    assert loss.item() == pytest.approx(-1 / 8, abs=1e-4)
    assert localization_loss([good], masks, torch.zeros(1, 2, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError, match="unknown localization loss"):
        localization_loss([good], masks, valid, kind="l2")


@pytest.fixture(scope="module")
def unet(tiny_dir):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(tiny_dir / "sd", subfolder="unet").eval()


def _reference_probs(attn, hidden, context, positions):
    q, k = attn.to_q(hidden), attn.to_k(context)
    b, h = q.shape[0], attn.heads
    q = q.view(b, -1, h, q.shape[-1] // h).transpose(1, 2)
    k = k.view(b, -1, h, k.shape[-1] // h).transpose(1, 2)
    probs = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1).mean(1)  # [B, N, L]
    return torch.stack([probs[i, :, positions[i]].T for i in range(b)])


def test_capture_matches_reference_and_keeps_output(unet):
    torch.manual_seed(0)
    sample, t, ctx = torch.randn(2, 4, 16, 8), torch.tensor([10, 500]), torch.randn(2, 12, 32)
    positions = torch.tensor([[3, 7, -1], [1, -1, -1]])
    assert middle_blocks(unet) == ["down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.0", "up_blocks.1"]
    before = {k: type(v) for k, v in unet.attn_processors.items()}
    with torch.no_grad():
        plain = unet(sample, t, encoder_hidden_states=ctx).sample
    store = install_capture(unet)
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, args, kw, out, n=n: seen.__setitem__(n, args[0]), with_kwargs=True)
             for n, m in unet.named_modules() if n in store.layer_names]
    store.set_token_positions(positions)
    store.set_latent_size((16, 8))
    with torch.no_grad():
        captured = unet(sample, t, encoder_hidden_states=ctx).sample
    for h in hooks:
        h.remove()
    torch.testing.assert_close(captured, plain, atol=1e-5, rtol=1e-5)
    assert len(store.maps) == len(store.layer_names) == 1 + 1 + 1 + 2 + 2
    assert all(n.endswith("attn2") for n in store.layer_names)
    modules = dict(unet.named_modules())
    for name, probs, size in zip(store.layer_names, store.maps, store.sizes):
        attn = modules[name]
        hidden = seen[name]
        ref = _reference_probs(attn, hidden, ctx, positions.clamp_min(0)) * (positions >= 0)[..., None]
        torch.testing.assert_close(probs, ref, atol=1e-5, rtol=1e-4)
        assert probs.shape[-1] == size[0] * size[1]
    uninstall_capture(unet)
    assert {k: type(v) for k, v in unet.attn_processors.items()} == before

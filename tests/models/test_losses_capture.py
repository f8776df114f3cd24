"""Losses on hand cases; the capture processor matches a plain attention computation."""

from __future__ import annotations

import pytest
import torch

from dp_models.attention_capture import install_capture, middle_blocks, uninstall_capture
from dp_models.losses import balanced_l1, denoising_loss, localization_loss


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
    # by SD-1.5's names, as upstream: the tiny UNet's 16x8 up_blocks.2 is in, its 4x2 up_blocks.0 is out
    assert middle_blocks(unet) == ["down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.1", "up_blocks.2"]
    assert middle_blocks(unet, 7) == ["down_blocks.0", "down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.1",
                                      "up_blocks.2"]
    assert middle_blocks(unet, 1) == ["mid_block"]
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


def _one_layer(heads: int, dim_head: int, positions: torch.Tensor):
    """A lone cross-attention layer running the capture processor (as install_capture sets it)."""
    from diffusers.models.attention_processor import Attention

    from dp_models.attention_capture import AttentionStore, CaptureAttnProcessor

    torch.manual_seed(1)
    attn = Attention(query_dim=16, cross_attention_dim=12, heads=heads, dim_head=dim_head)
    store = AttentionStore(["layer"], latent_size=(4, 3))
    attn.set_processor(CaptureAttnProcessor(store, "layer"))
    store.set_token_positions(positions)
    return attn, store


def _plain_attention(attn, hidden, context, positions, mask):
    """Explicit softmax attention: the layer's output and the flagged columns' head-averaged probabilities."""
    b, h = hidden.shape[0], attn.heads
    q, k, v = (t.view(b, -1, h, t.shape[-1] // h).transpose(1, 2)
               for t in (attn.to_q(hidden), attn.to_k(context), attn.to_v(context)))
    probs = torch.softmax(q @ k.transpose(-1, -2) * attn.scale + mask[:, None], dim=-1)  # [B, H, N, L]
    out = attn.to_out[0]((probs @ v).transpose(1, 2).reshape(b, -1, h * q.shape[-1]))
    mean = probs.mean(1)
    flagged = torch.stack([mean[i, :, positions[i].clamp_min(0)].T for i in range(b)])
    return out, flagged * (positions >= 0)[..., None]


@pytest.mark.parametrize("heads, dim_head", [(2, 8), (4, 5)])
def test_capture_values_and_gradients_match_plain_attention(heads, dim_head):
    positions = torch.tensor([[2, 9, -1], [0, -1, -1]])
    attn, store = _one_layer(heads, dim_head, positions)
    hidden = torch.randn(2, 12, 16, requires_grad=True)  # 4x3 latent positions
    context = torch.randn(2, 10, 12, requires_grad=True)
    mask = torch.zeros(2, 1, 10)
    mask[1, 0, 6:] = float("-inf")  # the second caption's last keys are padding
    w_out, w_probs = torch.randn(2, 12, 16), torch.randn(2, 3, 12)

    def grads(out, probs):
        loss = (out * w_out).sum() + (probs * w_probs).sum()
        params = [hidden, context, attn.to_q.weight, attn.to_k.weight, attn.to_v.weight]
        return torch.autograd.grad(loss, params)

    out = attn(hidden, encoder_hidden_states=context, attention_mask=mask)
    (probs,) = store.maps
    ref_out, ref_probs = _plain_attention(attn, hidden, context, positions, mask)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probs, ref_probs, atol=1e-6, rtol=1e-4)
    assert probs.dtype == torch.float32 and store.sizes == [(4, 3)]
    assert probs[1, 1:].abs().max() == 0 and (probs[1, 0] > 0).all()  # -1 slots give all-zero maps
    for got, want in zip(grads(out, probs), grads(ref_out, ref_probs)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    # the padded keys of the second caption get no probability
    store.set_token_positions(torch.tensor([[2, 9, -1], [7, -1, -1]]))
    attn(hidden, encoder_hidden_states=context, attention_mask=mask)
    assert store.maps[0][1, 0].abs().max() == 0


def _fp32_recomputation(attn, hidden, context, positions, mask):
    """The capture's previous path under autocast / half precision: the whole fp32 score matrix, its row
    logsumexp, and the flagged columns exponentiated against it (head-averaged, -1 slots zero)."""
    b, h = hidden.shape[0], attn.heads
    q, k = (t.view(b, -1, h, t.shape[-1] // h).transpose(1, 2) for t in (attn.to_q(hidden), attn.to_k(context)))
    with torch.autocast("cpu", enabled=False):
        scores = q.float() @ k.float().transpose(-1, -2) * attn.scale + mask[:, None].float()
        lse = torch.logsumexp(scores, dim=-1, keepdim=True)
        cols = positions.clamp_min(0)[:, None, None, :].expand(-1, h, scores.shape[2], -1)
        probs = torch.exp(torch.gather(scores, -1, cols) - lse).mean(dim=1)
    return (probs * (positions >= 0)[:, None, :]).transpose(1, 2)


@pytest.mark.parametrize("mode", ["fp32", "autocast-bf16", "bf16-weights"])
def test_capture_equals_the_fp32_recomputation_in_every_precision(mode):
    """One SDPA call gives the flagged probabilities in the compute dtype; they equal the old fp32
    recomputation from the same q and k (bf16: up to its rounding), and their gradients follow."""
    positions = torch.tensor([[1, 4, 6], [3, -1, -1]])
    attn, store = _one_layer(2, 8, positions)
    dtype = torch.bfloat16 if mode == "bf16-weights" else torch.float32
    attn.to(dtype)
    hidden = torch.randn(2, 12, 16, dtype=dtype, requires_grad=True)
    context = torch.randn(2, 10, 12, dtype=dtype)
    mask = torch.zeros(2, 1, 10, dtype=dtype)
    mask[1, 0, 7:] = float("-inf")
    w_probs = torch.randn(2, 3, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "autocast-bf16"):
        out = attn(hidden, encoder_hidden_states=context, attention_mask=mask)
        old = _fp32_recomputation(attn, hidden, context, positions, mask)
    (probs,) = store.maps
    assert out.dtype == (torch.float32 if mode == "fp32" else torch.bfloat16) and probs.dtype == torch.float32
    tol = dict(atol=1e-6, rtol=1e-5) if mode == "fp32" else dict(atol=2e-3, rtol=1.6e-2)  # bf16: 8-bit mantissa
    torch.testing.assert_close(probs, old, **tol)
    assert probs[1, 1:].abs().max() == 0 and (probs[1, 0] > 0).all()
    (got,) = torch.autograd.grad((probs * w_probs).sum(), hidden)
    (want,) = torch.autograd.grad((old * w_probs).sum(), hidden)
    torch.testing.assert_close(got.float(), want.float(), **({"atol": 1e-5, "rtol": 1e-4} if mode == "fp32"
                                                              else {"atol": 5e-3, "rtol": 5e-2}))

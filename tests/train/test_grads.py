"""FlatGrads: the trained gradients as views of one buffer, clipped and zeroed in one op each."""

from __future__ import annotations

import pytest
import torch

from dp_cli.train.grads import FlatGrads


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 5), torch.nn.Linear(5, 1))


def _backward(model: torch.nn.Module, scale: float = 50.0) -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    (scale * model(x).square().sum()).backward()


def test_gradients_land_in_the_buffer_and_clipping_matches_torch():
    flat_model, plain = _model(), _model()
    grads = FlatGrads.for_params(list(flat_model.parameters()))
    assert grads is not None
    _backward(flat_model)
    _backward(plain)
    assert grads.intact()  # autograd accumulated into the views instead of replacing them
    assert torch.equal(grads.buffer, torch.cat([p.grad.flatten() for p in plain.parameters()]))
    norm = grads.clip_(1.0)
    expected = torch.nn.utils.clip_grad_norm_(list(plain.parameters()), 1.0)
    assert float(expected) > 1.0  # the case that scales
    torch.testing.assert_close(norm, expected)
    for p, q in zip(flat_model.parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    assert float(torch.linalg.vector_norm(grads.buffer)) == pytest.approx(1.0, rel=1e-5)


def test_a_small_norm_is_left_alone():
    model = _model()
    grads = FlatGrads.for_params(list(model.parameters()))
    _backward(model, scale=1e-6)
    before = grads.buffer.clone()
    grads.clip_(1.0)
    assert torch.equal(grads.buffer, before)


def test_zeroing_keeps_the_views_and_gives_back_a_replaced_one():
    model = _model()
    params = list(model.parameters())
    grads = FlatGrads.for_params(params)
    _backward(model)
    grads.zero_()
    assert grads.intact() and not grads.buffer.any()
    params[0].grad = torch.ones_like(params[0])  # something replaced a gradient
    assert not grads.intact()
    grads.zero_()
    assert grads.intact() and params[0].grad.data_ptr() == grads.buffer.data_ptr()
    _backward(model)  # accumulates into the buffer again
    assert grads.intact() and grads.buffer.any()


def test_mixed_dtypes_or_existing_gradients_keep_the_per_tensor_path():
    model = _model()
    _backward(model)
    assert FlatGrads.for_params(list(model.parameters())) is None  # gradients already there
    mixed = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))]
    assert FlatGrads.for_params(mixed) is None
    assert FlatGrads.for_params([]) is None


def test_training_with_one_buffer_equals_the_per_tensor_path(dp, train_args, tmp_path, losses_of, monkeypatch):
    """The same run with FlatGrads (clip and zero in one op, the model's zero term left out) and with the
    per-tensor path (clip_grad_norm_, zero_grad(set_to_none), the zero term): the same losses and weights."""
    from safetensors.torch import load_file

    from dp_cli.train import loop

    used, clipped = [], []
    real, real_clip = loop.flat_grads, FlatGrads.clip_
    monkeypatch.setattr(loop, "flat_grads", lambda acc, params: used.append(real(acc, params)) or used[-1])
    monkeypatch.setattr(FlatGrads, "clip_", lambda self, n: clipped.append(n) or real_clip(self, n))
    flat = tmp_path / "flat"
    assert dp("train", *train_args(flat, max_train_steps=4, max_grad_norm=0.05)).exit_code == 0
    assert used and used[-1] is not None
    assert len(clipped) == 4  # the buffer stayed the gradients on every step (no fallback)
    monkeypatch.setattr(loop, "flat_grads", lambda acc, params: None)
    plain = tmp_path / "plain"
    assert dp("train", *train_args(plain, max_train_steps=4, max_grad_norm=0.05)).exit_code == 0
    a, b = losses_of(flat), losses_of(plain)
    assert sorted(a) == [1, 2, 3, 4]
    assert a == pytest.approx(b, rel=1e-5)
    compared = 0
    for part in ("unet", "image_encoder", "fusion"):
        for name in sorted(p.name for p in (flat / "model" / part).glob("*.safetensors")):
            wa, wb = load_file(flat / "model" / part / name), load_file(plain / "model" / part / name)
            for key in wa:
                torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-6)
                compared += 1
    assert compared > 100

"""torch.compile of the UNet and the encoders (DPModel.compile_parts) gives the eager results on CPU."""

from __future__ import annotations

import copy

import pytest
import torch

from dp_models.dp_model import DPConfig, DPModel


def _losses_and_grads(model: DPModel, batch: dict, noise: torch.Tensor, timesteps: torch.Tensor):
    model.zero_grad(set_to_none=True)
    out = model.training_losses(batch, noise=noise, timesteps=timesteps, loc=True, mask_loss=False)
    out["loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in out.items()}, grads, [m.detach() for m in model.attention_store.maps]


@pytest.mark.slow  # aot_eager: about 30 s; inductor (the default backend): 4 minutes cold on one CPU thread
def test_compiled_training_step_equals_eager(make_batch, tiny_dir, quiet_compile_trace):
    """Dynamo + AOT autograd capture the whole step (the capture processors, the fused tokens, the losses)
    and give eager's losses, maps and gradients. The inductor code itself is checked on the edit pipeline
    (tests/edit/test_pipeline.py), which compiles in a quarter of the time; the step's inductor run is
    `benchmarks/train_step.py --compile default`."""
    torch.manual_seed(0)
    config = DPConfig(resolution=(64, 32), train_text_encoder=True, localization_weight=0.05)
    eager = DPModel.from_pretrained_parts(str(tiny_dir / "sd"), str(tiny_dir / "clip-vision"), config)
    compiled = copy.deepcopy(eager)
    compiled.compile_parts("default", backend="aot_eager")
    batch = make_batch(eager, batch_size=2)
    batch["latents"] = eager.vae_latents(batch.pop("pixel_values"), sample=False)  # no VAE sampling draw
    g = torch.Generator().manual_seed(3)
    noise, timesteps = torch.randn(2, 4, 16, 8, generator=g), torch.tensor([250, 750])
    want, want_grads, want_maps = _losses_and_grads(eager, batch, noise, timesteps)
    for _ in range(2):  # the second call runs the cached graphs
        got, got_grads, got_maps = _losses_and_grads(compiled, batch, noise, timesteps)
        for k in want:
            torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-4)
        assert got_grads.keys() == want_grads.keys() and len(got_grads) > 100
        for name in want_grads:
            torch.testing.assert_close(got_grads[name], want_grads[name], atol=1e-5, rtol=1e-3, msg=name)
        for a, b in zip(got_maps, want_maps, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    assert compiled.unet._compiled_call_impl is not None and eager.unet._compiled_call_impl is None
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # saving and resuming see the same names


def test_compile_modes_are_checked_and_none_leaves_the_model_eager(tiny_dir):
    model = DPModel.from_pretrained_parts(str(tiny_dir / "sd"), str(tiny_dir / "clip-vision"),
                                          DPConfig(resolution=(64, 32)))
    model.compile_parts("none")
    assert all(m._compiled_call_impl is None for m in (model.unet, model.text_encoder, model.image_encoder.vision))
    with pytest.raises(RuntimeError, match="mode=fast"):
        model.compile_parts("fast")

"""DPModel: losses finite, overfitting works, localization moves attention, save/load round trip, errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dp_cli.errors import ConfigError, ModelError
from dp_models.dp_model import DPConfig, DPModel


def _model(tiny_dir, **cfg) -> DPModel:
    torch.manual_seed(0)
    config = DPConfig(resolution=(64, 32), **cfg)
    return DPModel.from_pretrained_parts(str(tiny_dir / "sd"), str(tiny_dir / "clip-vision"), config)


def _fixed(batch_size: int = 2):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch_size, 4, 16, 8, generator=g), torch.tensor([300, 600, 100, 900][:batch_size])


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_training_losses_finite_with_gradients(make_batch, tiny_dir, prediction_type):
    model = _model(tiny_dir, prediction_type=prediction_type, mask_loss=True, mask_loss_prob=1.0)
    assert model.noise_scheduler.config.prediction_type == prediction_type
    out = model.training_losses(make_batch(model))
    assert set(out) == {"loss", "denoise", "loc"} and all(torch.isfinite(v) for v in out.values())
    assert out["loc"].item() != 0.0
    out["loss"].backward()
    assert model.fusion.mlp1.fc1.weight.grad.abs().sum() > 0
    last = model.image_encoder.vision.vision_model.encoder.layers[-1]
    assert last.mlp.fc1.weight.grad is not None
    assert model.image_encoder.vision.vision_model.encoder.layers[0].mlp.fc1.weight.grad is None
    assert all(p.grad is None for p in model.text_encoder.parameters())
    assert all(p.grad is None for p in model.vae.parameters())


def test_masked_denoising_differs_and_no_attribute_batch_keeps_graph(make_batch, tiny_dir):
    model = _model(tiny_dir, localization=False)
    batch, (noise, ts) = make_batch(model), _fixed()
    plain = model.training_losses(batch, noise=noise, timesteps=ts, mask_loss=False)["denoise"]
    masked = _model(tiny_dir, localization=False, mask_loss_prob=1.0).training_losses(
        batch, noise=noise, timesteps=ts, mask_loss=True)["denoise"]
    assert plain.item() != pytest.approx(masked.item(), rel=1e-4)
    batch["attr_valid"][:] = False
    out = model.training_losses(batch, noise=noise, timesteps=ts)
    out["loss"].backward()
    assert model.fusion.mlp1.fc1.weight.grad is not None  # zero, but present: DDP needs no unused params


def _overfit(model, batch, steps, lr=1e-3, loc=None, in_mask_mass=None):
    noise, ts = _fixed(batch["input_ids"].shape[0])
    batch = dict(batch, latents=model.vae_latents(batch["pixel_values"], sample=False))
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=lr)
    history = []
    for _ in range(steps):
        out = model.training_losses(batch, noise=noise, timesteps=ts, loc=loc)
        mass = in_mask_mass(model.attention_store, batch["attr_masks"], batch["attr_valid"]) if loc else 0.0
        history.append((out["denoise"].item(), out["loc"].item(), mass))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    return history


def test_overfitting_one_batch_lowers_denoising_loss(make_batch, tiny_dir):
    model = _model(tiny_dir, localization=False)
    history = _overfit(model, make_batch(model), steps=25)
    assert history[-1][0] < 0.2 * history[0][0]


def test_localization_loss_pulls_attention_into_masks(make_batch, in_mask_mass, tiny_dir):
    model = _model(tiny_dir, localization_weight=1.0)
    # 40 steps: with the 16x8 up_blocks.2 among the localized blocks the first steps move it less
    history = _overfit(model, make_batch(model), steps=40, loc=True, in_mask_mass=in_mask_mass)
    (_, loc0, mass0), (_, loc1, mass1) = history[0], history[-1]
    assert loc1 < loc0 - 0.05
    assert mass1 > mass0 + 0.1


def test_save_from_pretrained_round_trip(make_batch, in_mask_mass, tiny_dir, tmp_path):
    from diffusers import UNet2DConditionModel

    model = _model(tiny_dir, prediction_type="v_prediction")
    # a few steps, so the weights differ from the tiny start
    _overfit(model, make_batch(model), steps=2, loc=True, in_mask_mass=in_mask_mass)
    model.eval()
    out_dir = model.save_pretrained(tmp_path / "final")
    loaded = DPModel.from_pretrained(str(out_dir)).eval()
    assert loaded.config == model.config
    assert loaded.noise_scheduler.config.prediction_type == "v_prediction"
    batch, (noise, ts) = make_batch(model), _fixed()
    batch["latents"] = model.vae_latents(batch["pixel_values"], sample=False)
    with torch.no_grad():
        a = model.training_losses(batch, noise=noise, timesteps=ts)
        b = loaded.training_losses(batch, noise=noise, timesteps=ts)
        ea = model.encode_prompt(batch["input_ids"], batch["ref_pixel_values"], batch["token_positions"])
        eb = loaded.encode_prompt(batch["input_ids"], batch["ref_pixel_values"], batch["token_positions"])
    torch.testing.assert_close(eb, ea, rtol=0, atol=0)
    latents = loaded.vae_latents(batch["pixel_values"], sample=False)
    torch.testing.assert_close(latents, batch["latents"], rtol=0, atol=0)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    plain = UNet2DConditionModel.from_pretrained(out_dir, subfolder="unet")
    torch.testing.assert_close(plain.conv_in.weight, model.unet.conv_in.weight, rtol=0, atol=0)
    assert json.loads((out_dir / "dp_config.json").read_text())["prediction_type"] == "v_prediction"
    # diffusers' default size is the trained one (64x32), not a square from an int sample_size
    from diffusers import StableDiffusionPipeline

    sd = StableDiffusionPipeline.from_pretrained(out_dir, safety_checker=None, requires_safety_checker=False)
    image = sd("a woman with black hair", num_inference_steps=1, output_type="pil").images[0]
    assert image.size == (32, 64)


def test_incomplete_or_missing_folders_give_model_error(tiny_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir / "sd", broken)
    shutil.rmtree(broken / "vae")
    (broken / "text_encoder" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=rf"{broken} is incomplete: missing vae"):
        DPModel.from_pretrained_parts(str(broken), str(tiny_dir / "clip-vision"), DPConfig(resolution=(64, 32)))
    (broken / "vae").mkdir()
    shutil.copytree(tiny_dir / "sd" / "vae", broken / "vae", dirs_exist_ok=True)
    with pytest.raises(ModelError, match="cannot load text_encoder from") as info:
        DPModel.from_pretrained_parts(str(broken), str(tiny_dir / "clip-vision"), DPConfig(resolution=(64, 32)))
    assert "damaged or incomplete" in str(info.value) and "hub id" not in str(info.value)  # a local folder
    with pytest.raises(ModelError, match="missing image_encoder, fusion, dp_config.json"):
        DPModel.from_pretrained(str(tiny_dir / "sd"))
    with pytest.raises(ModelError, match="does not exist"):
        DPModel.from_pretrained(str(tmp_path / "nowhere"))


def test_bad_settings_give_clear_errors(tiny_dir):
    with pytest.raises(ConfigError, match="trainable_layers = 5.*has 3 layers"):
        _model(tiny_dir, image_encoder_trainable_layers=5)
    with pytest.raises(ConfigError, match="resolution 60x32 is not divisible by 16"):
        DPModel.from_pretrained_parts(str(tiny_dir / "sd"), str(tiny_dir / "clip-vision"),
                                      DPConfig(resolution=(60, 32)))
    with pytest.raises(ConfigError, match="unknown attribute type"):
        DPConfig(attribute_types="hair_wings")
    with pytest.raises(ConfigError, match="prediction_type 'sample'"):
        DPConfig(prediction_type="sample")


def test_config_json_round_trip(tmp_path):
    config = DPConfig(attribute_types="hair_shoes", resolution=96, localization_weight=0.01)
    config.save(tmp_path / "c.json")
    assert DPConfig.load(tmp_path / "c.json") == config
    assert config.attribute_types == ("hair", "shoes") and config.resolution == (96, 96)


def test_gradient_checkpointing_and_replaced_processors(make_batch, tiny_dir):
    from diffusers.models.attention_processor import AttnProcessor

    model = _model(tiny_dir, localization_weight=1.0)
    batch, (noise, ts) = make_batch(model), _fixed()
    batch["latents"] = model.vae_latents(batch["pixel_values"], sample=False)
    model.training_losses(batch, noise=noise, timesteps=ts)["loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.unet.named_parameters()}
    model.zero_grad()
    model.unet.enable_gradient_checkpointing()
    model.unet.train()
    model.training_losses(batch, noise=noise, timesteps=ts)["loss"].backward()
    for n, p in model.unet.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], atol=1e-6, rtol=1e-5)
    model.unet.set_attn_processor(AttnProcessor())  # e.g. --disable-flash-attention after a first step
    out = model.training_losses(batch, noise=noise, timesteps=ts)
    assert out["loc"].item() != 0.0  # the capture was put back on the chosen layers
    model.remove_capture()
    assert all(type(p) is AttnProcessor for p in model.unet.attn_processors.values())


def test_hub_id_offline_not_cached_gives_model_error(tmp_path, subprocess_env):
    import subprocess
    import sys

    code = ("from dp_models.dp_model import DPModel, DPConfig\n"
            "from dp_cli.errors import ModelError\n"
            "try:\n"
            "    DPModel.from_pretrained_parts('stable-diffusion-v1-5/stable-diffusion-v1-5',"
            " 'openai/clip-vit-large-patch14', DPConfig())\n"
            "except ModelError as e:\n"
            "    print('MODELERROR', e)\n")
    env = subprocess_env(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    line = [x for x in res.stdout.splitlines() if x.startswith("MODELERROR")]
    assert line, res.stderr[-2000:]
    assert "cannot load unet from stable-diffusion-v1-5/stable-diffusion-v1-5" in line[0]
    assert "HF_HUB_OFFLINE is set" in line[0]

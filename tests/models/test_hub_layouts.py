"""DPModel loads the layouts of the real hub repositories (tiny random replicas, see hub_layouts.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

@pytest.fixture(scope="module")
def sd15_dir(hl, tmp_path_factory) -> Path:
    return hl.sd15(tmp_path_factory.mktemp("sd15"))


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def config():
    from dp_models.dp_model import DPConfig

    return DPConfig(resolution=(64, 32))


def test_sd15_layout_loads_the_float32_weights(sd15_dir):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    from dp_models.dp_model import DPModel

    sd = sd15_dir / "sd"
    assert {"safety_checker", "feature_extractor"} <= set(json.loads((sd / "model_index.json").read_text()))
    assert (sd / "unet" / "diffusion_pytorch_model.fp16.safetensors").exists()
    model = DPModel.from_pretrained_parts(str(sd), str(sd15_dir / "clip-vision"), config())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    plain = load_file(sd / "text_encoder" / "model.safetensors")
    assert all(torch.equal(model.text_encoder.state_dict()[k], v) for k, v in plain.items())
    assert same(model.unet, UNet2DConditionModel.from_pretrained(sd / "unet"))
    assert model.unet.state_dict()["conv_in.weight"].abs().sum() > 0  # not the zeroed fp16 copy


def test_a_text_encoder_config_saying_float16_still_loads_float32(sd15_dir, tmp_path):
    from dp_models.dp_model import DPModel

    sd = tmp_path / "sd"
    shutil.copytree(sd15_dir / "sd", sd)
    cfg_path = sd / "text_encoder" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["dtype"] = cfg["torch_dtype"] = "float16"  # as saved from an fp16 pipeline
    cfg_path.write_text(json.dumps(cfg))
    model = DPModel.from_pretrained_parts(str(sd), str(sd15_dir / "clip-vision"), config())
    assert model.text_encoder.dtype == torch.float32


def test_bin_only_weights_load(hl, sd15_dir, tmp_path):
    from dp_models.dp_model import DPModel

    ref = DPModel.from_pretrained_parts(str(sd15_dir / "sd"), str(sd15_dir / "clip-vision"), config())
    sd = hl.bin_only(sd15_dir / "sd", tmp_path / "sd-bin")
    for part in ("unet", "vae", "text_encoder"):
        assert not list((sd / part).glob("*.safetensors")) and list((sd / part).glob("*.bin")), part
    model = DPModel.from_pretrained_parts(str(sd), str(sd15_dir / "clip-vision"), config())
    for part in ("unet", "vae", "text_encoder"):
        assert same(getattr(model, part), getattr(ref, part)), part


def test_full_clip_model_as_image_encoder(hl, sd15_dir, tmp_path):
    from transformers import CLIPModel

    from dp_models.dp_model import DPModel

    clip = hl.full_clip(tmp_path / "clip-vit-large-patch14", projection_dim=24)
    assert json.loads((clip / "config.json").read_text())["model_type"] == "clip"
    model = DPModel.from_pretrained_parts(str(sd15_dir / "sd"), str(clip), config())
    full = CLIPModel.from_pretrained(clip)
    enc = model.image_encoder
    assert enc.embed_dim == 24 and enc.image_size == 32 and enc.num_layers == 3
    assert torch.equal(enc.vision.visual_projection.weight, full.visual_projection.weight)
    assert same(enc.vision.vision_model, full.vision_model)
    out = enc(torch.randn(1, 2, 3, 32, 32))
    assert out.shape == (1, 2, 24)
    # saved and loaded back (as dp train's model folder has it): the same vision tower
    model.save_pretrained(tmp_path / "dp")
    again = DPModel.from_pretrained(str(tmp_path / "dp"))
    assert same(again.image_encoder, enc)


def test_incomplete_sd15_folder_is_one_model_error(sd15_dir, tmp_path):
    from dp_cli.errors import ModelError
    from dp_models.dp_model import DPModel

    sd = tmp_path / "sd"
    shutil.copytree(sd15_dir / "sd", sd, ignore=shutil.ignore_patterns("unet"))
    with pytest.raises(ModelError, match="missing unet") as info:
        DPModel.from_pretrained_parts(str(sd), str(sd15_dir / "clip-vision"), config())
    assert "\n" not in str(info.value)

"""Tiny random replicas of the hub repositories users point dp at (imported by path from the tests).

- sd15(): stable-diffusion-v1-5/stable-diffusion-v1-5: model_index.json naming safety_checker and
  feature_extractor, those folders, a PNDM scheduler config, and fp16 variant weights beside the float32 ones;
- bin_only(): the same SD parts with only pickled .bin weights;
- full_clip(): openai/clip-vit-large-patch14: a whole CLIPModel (text + vision), with the old-style
  preprocessor_config.json;
- segformer_b2_clothes(): mattmdjaga/segformer_b2_clothes: its 18 label names and preprocessor config.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

SEGFORMER_B2_CLOTHES_LABELS = (
    "Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress", "Belt", "Left-shoe",
    "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm", "Right-arm", "Bag", "Scarf")
SD15_INDEX = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
              "feature_extractor": ["transformers", "CLIPImageProcessor"],
              "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
              "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
              "vae": ["diffusers", "AutoencoderKL"]}
SD15_SCHEDULER = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
                  "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
                  "clip_sample": False}
CLIP_PREPROCESSOR = {"crop_size": 32, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                     "feature_extractor_type": "CLIPFeatureExtractor",
                     "image_mean": [0.48145466, 0.4578275, 0.40821073],
                     "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 32}
SEGFORMER_PREPROCESSOR = {"do_normalize": True, "do_reduce_labels": False, "do_rescale": True, "do_resize": True,
                          "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "SegformerImageProcessor",
                          "image_std": [0.229, 0.224, 0.225], "resample": 2,
                          "rescale_factor": 0.00392156862745098, "size": {"height": 64, "width": 64}}


def load(path: Path):
    """This module, from a test in another folder (pytest runs in importlib mode)."""
    spec = importlib.util.spec_from_file_location("hub_layouts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_clip_config(projection_dim: int = 32, vision_layers: int = 3):
    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                          vocab_size=100, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=vision_layers,
                              num_attention_heads=4, image_size=32, patch_size=8)
    # (the vision_config keeps its own default projection_dim, 512: only the top-level one is the model's)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=projection_dim)


def sd15(out: Path, height: int = 64, width: int = 32) -> Path:
    """The SD-1.5 repository layout (tiny random weights) in out/sd; out/clip-vision is a vision-only encoder."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPTextModel

    from dp_models.image_encoder import clip_image_processor_class
    from dp_models.tiny import write_tiny_pretrained

    write_tiny_pretrained(out, height=height, width=width, seed=0)
    sd = out / "sd"
    torch.manual_seed(1)
    checker = StableDiffusionSafetyChecker(_tiny_clip_config(16, 1))
    checker.save_pretrained(sd / "safety_checker")
    clip_image_processor_class()(size={"shortest_edge": 32},
                                 crop_size={"height": 32, "width": 32}).save_pretrained(sd / "feature_extractor")
    (sd / "model_index.json").write_text(json.dumps(SD15_INDEX, indent=2))
    (sd / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER, indent=2))
    with tempfile.TemporaryDirectory() as tmp:  # fp16 files beside the float32 ones; configs stay float32
        for name, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL), ("text_encoder", CLIPTextModel),
                          ("safety_checker", StableDiffusionSafetyChecker)):
            cls.from_pretrained(sd / name).half().save_pretrained(Path(tmp) / name, variant="fp16")
            for f in (Path(tmp) / name).glob("*.fp16.*"):
                shutil.copy2(f, sd / name / f.name)
    # scale the fp16 copies so that loading them by mistake would show
    _scale_safetensors(sd / "unet" / "diffusion_pytorch_model.fp16.safetensors", 0.0)
    _scale_safetensors(sd / "text_encoder" / "model.fp16.safetensors", 0.0)
    return out


def _scale_safetensors(path: Path, factor: float) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    save_file({k: v * factor for k, v in tensors.items()}, path, metadata={"format": "pt"})


def bin_only(sd: Path, out: Path) -> Path:
    """A copy of SD folder `sd` whose unet, vae and text encoder have only pickled .bin weights."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file

    shutil.copytree(sd, out)
    for name, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL)):
        model = cls.from_pretrained(sd / name)
        for f in (out / name).glob("*.safetensors"):
            f.unlink()
        model.save_pretrained(out / name, safe_serialization=False)
    # transformers 5 always writes safetensors: the .bin of an older transformers, written by hand
    state = load_file(out / "text_encoder" / "model.safetensors")
    for f in (out / "text_encoder").glob("*.safetensors"):
        f.unlink()
    torch.save(state, out / "text_encoder" / "pytorch_model.bin")
    return out


def full_clip(out: Path, projection_dim: int = 24) -> Path:
    """A whole CLIPModel (text + vision towers, model_type "clip"), as openai/clip-vit-large-patch14."""
    import torch
    from transformers import CLIPModel

    torch.manual_seed(2)
    CLIPModel(_tiny_clip_config(projection_dim)).save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps(CLIP_PREPROCESSOR, indent=2))
    return out


def segformer_b2_clothes(out: Path) -> Path:
    """SegformerForSemanticSegmentation with mattmdjaga/segformer_b2_clothes's labels and preprocessor config."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    names = SEGFORMER_B2_CLOTHES_LABELS
    cfg = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                          patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2],
                          decoder_hidden_size=16, num_labels=len(names), id2label=dict(enumerate(names)),
                          label2id={n: i for i, n in enumerate(names)},
                          architectures=["SegformerForSemanticSegmentation"])
    model = SegformerForSemanticSegmentation(cfg)
    with torch.no_grad():
        model.decode_head.classifier.weight.normal_(0, 2.0)
    model.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps(SEGFORMER_PREPROCESSOR, indent=2))
    return out

"""SD-1.5 / CLIP ViT-L/14 architectures with random weights, saved in the layout `dp` loads (no download).

Used by the GPU benchmarks (`train_step.py --sd15`, `edit_throughput.py --sd15`): the timings of a
training step or an edit do not depend on the weights, only on the architecture, so these stand in
for `stable-diffusion-v1-5/stable-diffusion-v1-5` and `openai/clip-vit-large-patch14`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sd15_parts():
    """(unet, vae, text_encoder, tokenizer, scheduler, vision, processor) at SD-1.5 / ViT-L/14 size."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig, \
        CLIPVisionModelWithProjection

    from dp_models.image_encoder import clip_image_processor_class
    from dp_models.tiny import write_tiny_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tok = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp))
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # diffusers' defaults are SD-1.5's UNet
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, projection_dim=768, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
        patch_size=14, projection_dim=768))
    processor = clip_image_processor_class()(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="scaled_linear", clip_sample=False, steps_offset=1)
    return unet, vae, text, tok, sched, vision, processor


def write_sd15_random(out_dir: str | Path, seed: int = 0) -> Path:
    """Write out_dir/sd/ (SD-1.5 layout) and out_dir/clip-vision/ with random weights; returns out_dir."""
    import torch
    from diffusers import StableDiffusionPipeline

    from dp_models.tiny import write_tiny_tokenizer

    out = Path(out_dir)
    torch.manual_seed(seed)
    unet, vae, text, tok, sched, vision, processor = sd15_parts()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out / "sd", safe_serialization=True)
    shutil.rmtree(out / "sd" / "tokenizer")  # SD-1.5's own layout: vocab.json + merges.txt
    write_tiny_tokenizer(out / "sd" / "tokenizer")
    vision.save_pretrained(out / "clip-vision", safe_serialization=True)
    processor.save_pretrained(out / "clip-vision")
    return out

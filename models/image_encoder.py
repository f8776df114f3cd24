"""The CLIP vision encoder for reference attribute images, its last N layers trainable."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from dp_cli.data.images import CLIP_MEAN, CLIP_STD
from dp_cli.errors import ConfigError


class ReferenceImageEncoder(nn.Module):
    """Reference images [B, A, 3, S, S] -> one projected vector each [B, A, proj_dim]."""

    def __init__(self, vision, trainable_layers: int | None = 2, mean=CLIP_MEAN, std=CLIP_STD):
        super().__init__()
        self.vision = vision
        self.image_size = int(vision.config.image_size)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.embed_dim = int(vision.config.projection_dim)
        self.set_trainable_layers(trainable_layers)

    @property
    def num_layers(self) -> int:
        return len(self.vision.vision_model.encoder.layers)

    def set_trainable_layers(self, n: int | None) -> None:
        """None: all frozen; 0: the whole encoder trains (as FastComposer and the DP upstream read 0);
        n > 0: the last n encoder layers, the final LayerNorm and the projection."""
        if n is not None and not 0 <= n <= self.num_layers:
            raise ConfigError(f"image_encoder_trainable_layers = {n}: the image encoder has {self.num_layers} "
                              f"layers; choose 0 (all of it) .. {self.num_layers}")
        self.trainable_layers = n
        self.vision.requires_grad_(n == 0)
        if n:
            for layer in self.vision.vision_model.encoder.layers[-n:]:
                layer.requires_grad_(True)
            self.vision.vision_model.post_layernorm.requires_grad_(True)
            self.vision.visual_projection.requires_grad_(True)

    def forward(self, pixel_values: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """pixel_values [B, A, 3, S, S] (normalised) -> [B, A, proj_dim]; rows not `valid` are zeros."""
        if pixel_values.ndim != 5:
            raise ValueError(f"pixel_values must be [B, A, 3, S, S], got {tuple(pixel_values.shape)}")
        b, a = pixel_values.shape[:2]
        flat = pixel_values.flatten(0, 1).to(self.vision.dtype)
        out = flat.new_zeros(b * a, self.embed_dim)
        keep = valid.flatten().bool() if valid is not None else torch.ones(b * a, dtype=torch.bool,
                                                                            device=flat.device)
        if keep.any():
            embeds = self.vision(pixel_values=flat[keep]).image_embeds
            out = out.to(embeds.dtype).index_put((keep.nonzero(as_tuple=True)[0],), embeds)  # autocast: bf16
        return out.view(b, a, self.embed_dim)

    @classmethod
    def from_pretrained(cls, path_or_id: str, trainable_layers: int | None = 2, **kwargs) -> "ReferenceImageEncoder":
        """Load CLIPVisionModelWithProjection (+ its preprocessor mean/std when present)."""
        from transformers import CLIPVisionModelWithProjection

        from dp_models.loading import float32_kwargs

        kwargs = float32_kwargs(kwargs)
        config = _full_clip_vision_config(path_or_id, kwargs)
        if config is not None:  # a full CLIPModel (openai/clip-vit-large-patch14): its vision tower + projection
            kwargs = {**kwargs, "config": config}
        vision = CLIPVisionModelWithProjection.from_pretrained(path_or_id, **kwargs)
        mean, std = _processor_stats(path_or_id, kwargs)
        return cls(vision, trainable_layers, mean, std)

    def save_pretrained(self, out_dir) -> None:
        """Save the vision model and a CLIP preprocessor config that reproduces `preprocess_reference`
        exactly (a bicubic squash to size x size, no centre crop), so transformers' CLIP image processor
        loaded from the folder feeds the encoder the pixels dp does."""
        self.vision.save_pretrained(out_dir, safe_serialization=True)
        size = self.image_size
        processor = clip_image_processor_class()(
            size={"height": size, "width": size}, do_center_crop=False, crop_size={"height": size, "width": size},
            resample=3, image_mean=list(self.mean), image_std=list(self.std))  # 3: PIL bicubic
        processor.save_pretrained(out_dir)


def clip_image_processor_class():
    """transformers 5's PIL CLIP processor (no torchvision needed), or the classic one on transformers 4."""
    try:
        from transformers import CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor as CLIPImageProcessorPil
    return CLIPImageProcessorPil


def _full_clip_vision_config(path_or_id: str, kwargs: dict):
    """The vision config of a full CLIPModel checkpoint (model_type "clip"), with the model's projection_dim
    (CLIPModel keeps it at the top level; a vision_config may lack it or carry another default); None for a
    vision-only checkpoint, which loads as it is."""
    if "config" in kwargs:
        return None
    from transformers import AutoConfig

    passed = {k: v for k, v in kwargs.items()
              if k in ("subfolder", "local_files_only", "revision", "cache_dir", "token", "force_download")}
    config = AutoConfig.from_pretrained(path_or_id, **passed)
    if getattr(config, "model_type", None) != "clip" or getattr(config, "vision_config", None) is None:
        return None
    vision = config.vision_config
    vision.projection_dim = int(config.projection_dim)
    return vision


def _processor_stats(path_or_id: str, kwargs: dict) -> tuple[tuple, tuple]:
    try:
        passed = {k: v for k, v in kwargs.items() if k in ("subfolder", "local_files_only", "revision")}
        proc = clip_image_processor_class().from_pretrained(path_or_id, **passed)
        return tuple(proc.image_mean), tuple(proc.image_std)
    except (OSError, ValueError):
        return CLIP_MEAN, CLIP_STD


def preprocess_reference(images, size: int, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """PIL images or uint8 arrays [N, H, W, 3] / [H, W, 3] -> normalised [N, 3, size, size] (bicubic resize)."""
    if isinstance(images, np.ndarray):
        arr = images[None] if images.ndim == 3 else images
        images = [Image.fromarray(np.asarray(a, dtype=np.uint8)) for a in arr]
    if not len(images):
        return torch.zeros(0, 3, size, size)
    # to_clip_pixels' arithmetic, once for the stack (the same values)
    arr = np.stack([np.asarray(img.convert("RGB").resize((size, size), Image.BICUBIC)) for img in images])
    arr = (arr.astype(np.float32) / 255.0 - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()

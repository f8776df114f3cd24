"""`[train]`: every setting of the seed's training command (kebab-case flags, snake_case keys)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, field_validator

from dp_cli.config import Section, path_or_hub

LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
REPORT_TO = ("none", "tensorboard", "wandb", "all")
# torch.compile modes of the UNet and encoders (train and edit); none: eager
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def parse_resolution(value: str | int) -> tuple[int, int]:
    """'128' -> (128, 128); '128x64' (height x width) -> (128, 64); ValueError otherwise."""
    text = str(value).strip().lower()
    m = re.fullmatch(r"(\d+)(?:\s*[x,]\s*(\d+))?", text)
    if not m:
        raise ValueError(f"resolution must be 'N' or 'HxW' (height x width), e.g. 128 or 128x64")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    if h <= 0 or w <= 0:
        raise ValueError("resolution must be positive")
    return h, w


class TrainConfig(Section):
    """`dp train` - every key is also a kebab-case flag (max_train_steps -> --max-train-steps);
    the seed's spellings of its flags (--pretrained_model_hf, --MAX_REFERENCE_ATTRIBUTE_NUM, ...) work too.
    Defaults are the paper's settings; relative paths resolve against this file's folder."""

    # --- models and data -------------------------------------------------------------------------
    pretrained_model: str = path_or_hub(
        default="stable-diffusion-v1-5/stable-diffusion-v1-5",
        description="Stable Diffusion 1.5-layout model (hub id or folder) the UNet, VAE and text encoder come from")
    image_encoder: str = path_or_hub(
        default="openai/clip-vit-large-patch14",
        description="CLIP vision model (hub id or folder) that encodes reference attribute images")
    revision: Optional[str] = Field(
        default=None, description="Hub revision (branch, tag or commit) of pretrained_model; unused for a folder",
                      examples=["main"])
    image_encoder_revision: Optional[str] = Field(
        default=None, description="Hub revision (branch, tag or commit) of image_encoder; unused for a folder",
                      examples=["main"])
    load_model: Optional[Path] = Field(
        default=None, description="DP model folder (OUTPUT_DIR/model of a run) whose UNet, text encoder, image "
                                  "encoder and fusion weights training starts from; not a resume: step 0, fresh "
                                  "optimizer (VAE, tokenizer, schedule: pretrained_model)", examples=["runs/dp/model"])
    dataset: Optional[Path] = Field(
        default=None, description="Person dataset folder with parsing maps (native format, or an importable one)",
                      examples=["data/toy"])
    split: str = Field(default="train", description="Dataset split to train on")
    output_dir: Path = Field(default=Path("dp-model"),
                             description="Run folder: checkpoints, logs and the final model (in output_dir/model)")
    logging_dir: Optional[Path] = Field(default=None,
                                        description="Tracker log folder (default: output_dir/logs)",
                                        examples=["dp-model/logs"])
    # --- schedule --------------------------------------------------------------------------------
    max_train_steps: int = Field(default=30000, ge=1, description="Optimizer steps to train (at most)")
    num_train_epochs: Optional[int] = Field(
        default=None, ge=1, description="Stop after this many epochs if that comes before max_train_steps",
                            examples=[100])
    train_batch_size: int = Field(default=32, ge=1, description="Batch size per device")
    gradient_accumulation_steps: int = Field(default=1, ge=1, description="Batches accumulated per optimizer step")
    lr: float = Field(default=1e-5, gt=0, description="Learning rate (image encoder, fusion module, text encoder)")
    unet_lr_scale: float = Field(default=1.0, gt=0, description="UNet learning rate = lr * unet_lr_scale")
    scale_lr: bool = Field(default=False,
                           description="Multiply lr by batch size x accumulation steps x number of processes")
    lr_scheduler: Literal[LR_SCHEDULERS] = Field(default="constant", description="Learning-rate schedule")
    lr_warmup_steps: int = Field(default=0, ge=0, description="Warm-up steps of the schedule")
    adam_beta1: float = Field(default=0.9, ge=0, lt=1, description="AdamW beta1")
    adam_beta2: float = Field(default=0.999, ge=0, lt=1, description="AdamW beta2")
    adam_weight_decay: float = Field(default=1e-2, ge=0, description="AdamW weight decay")
    adam_epsilon: float = Field(default=1e-8, gt=0, description="AdamW epsilon")
    max_grad_norm: float = Field(default=1.0, ge=0, description="Gradient clipping norm (0 = no clipping)")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(
        default="no", description="Mixed precision; on CPU only 'no' or 'bf16'",
        json_schema_extra={"env": "DP_MIXED_PRECISION"})
    seed: int = Field(default=42, description="Random seed (data order, noise, timesteps)")
    # --- model -----------------------------------------------------------------------------------
    img_token_num: int = Field(default=1, ge=1, description="Image tokens per reference attribute")
    max_reference_attributes: int = Field(default=3, ge=1,
                                          description="Most reference attributes per image "
                                                      "(MAX_REFERENCE_ATTRIBUTE_NUM)")
    resolution: str = Field(default="128", description="Training resolution: 'N' (square) or 'HxW' (height x width)")
    prediction_type: Literal["epsilon", "v_prediction"] = Field(
        default="epsilon", description="What the UNet predicts: the noise (epsilon) or v (v_prediction)")
    text_image_linking: Literal["postfuse", "control"] = Field(
        default="postfuse", description="Text-image fusion: postfuse ('control', the seed's spelling, is the same)")
    disable_flash_attention: bool = Field(default=False, description="Use the plain attention processor, not SDPA")
    train_image_encoder: bool = Field(default=True, description="Train the last layers of the CLIP image encoder")
    image_encoder_trainable_layers: int = Field(
        default=2, ge=0, description="How many last vision layers train (0: the whole encoder, embeddings included,"
                                     " as upstream)")
    train_text_encoder: bool = Field(default=False, description="Train the CLIP text encoder too")
    gradient_checkpointing: bool = Field(default=False, description="Trade compute for memory in the UNet")
    compile: Literal[COMPILE_MODES] = Field(
        default="none", description="torch.compile the UNet and encoders: none, default, reduce-overhead (plus CUDA "
                                    "graphs on a GPU) or max-autotune; the first steps compile (minutes)")
    reference_attribute_types: Union[str, list[str]] = Field(
        default="hair_uppercloth_bottomcloth", description="Attribute types with references: 'a_b_c' or a list")
    # --- losses ----------------------------------------------------------------------------------
    mask_loss: bool = Field(default=True, description="Denoising loss only inside the attribute masks, sometimes")
    mask_loss_prob: float = Field(default=0.5, ge=0, le=1, description="Probability of the mask loss per step")
    attribute_loc: bool = Field(default=True, description="Add the cross-attention localization loss")
    attribute_loc_weight: float = Field(default=1e-3, ge=0, description="Weight of the localization loss")
    attribute_localization_loss: Literal["balanced_l1"] = Field(default="balanced_l1",
                                                                description="Localization loss kind")
    attribute_loc_layers: int = Field(default=5, ge=1, le=7,
                                      description="Middle UNet blocks (of SD-1.5's 7 with cross-attention, by name;"
                                                  " 5 = down 1-2, mid, up 1-2) that are localized")
    attribute_loc_normalize: bool = Field(default=False, description="Normalise attention maps before the loss")
    uncondition_prob: float = Field(default=0.0, ge=0, le=1,
                                    description="Probability of an empty caption (trains classifier-free guidance)")
    # --- data ------------------------------------------------------------------------------------
    caption_augmentation: bool = Field(default=True,
                                       description="Drop adjectives of attribute phrases that have a reference")
    caption_augmentation_prob: float = Field(default=0.5, ge=0, le=1,
                                             description="Probability of dropping one phrase's adjectives")
    reference_augmentation: bool = Field(
        default=True, description="Vary reference crops: plain light or noise backgrounds, padding, scale (so "
                                  "catalog photos, prepared at edit time, look like what the image encoder saw in "
                                  "training)")
    random_flip: bool = Field(default=False, description="Random horizontal flips (turns latent caching off)")
    cache_latents: bool = Field(default=True, description="Encode each image with the frozen VAE once, not every "
                                                          "step")
    dataloader_num_workers: Union[int, Literal["auto"]] = Field(
        default="auto", description="DataLoader worker processes, or \"auto\": 0 on CPU, up to 4 per process on a GPU"
                                    " (reference crops + CLIP preprocessing take ~0.2 s per SD-1.5 batch of 32 on "
                                    "the main process; benchmarks/README.md)")
    pin_memory: bool = Field(default=True, description="Pin host memory of batches and copy them to the GPU without "
                                                       "waiting (GPU only)")
    strict: bool = Field(default=False, description="Fail on a corrupt or missing file instead of skipping it")
    # --- checkpoints and logging -----------------------------------------------------------------
    checkpointing_steps: int = Field(default=200, ge=1, description="Save a checkpoint every N optimizer steps")
    keep_only_last_checkpoint: bool = Field(
        default=True, description="Delete older checkpoints (except multiples of keep_interval)")
    keep_interval: Optional[int] = Field(default=10000, ge=1,
                                         description="Checkpoints at multiples of this step are never deleted")
    checkpoints_total_limit: Optional[int] = Field(
        default=None, ge=1, description="Keep at most N checkpoints when keep_only_last_checkpoint is off",
                            examples=[5])
    resume_from_checkpoint: Optional[str] = Field(
        default=None, description="'latest' or a checkpoint folder to continue the same run from", examples=["latest"])
    report_to: Literal[REPORT_TO] = Field(default="none", description="Trackers: none, tensorboard, wandb or all")
    log_every: int = Field(default=10, ge=1, description="Log losses to the trackers every N steps")

    @field_validator("dataloader_num_workers", mode="before")
    @classmethod
    def _workers(cls, value):
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit():
            raise ValueError("expected a number of worker processes (0 or more) or 'auto'")
        return int(text)

    @field_validator("reference_attribute_types")
    @classmethod
    def _types(cls, v: str | list[str]) -> str | list[str]:
        from dp_cli.data.attributes import parse_types

        parse_types(v)
        return v

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, v: str | int) -> str:
        parse_resolution(v)
        return str(v).strip().lower()

    @property
    def types(self) -> tuple[str, ...]:
        from dp_cli.data.attributes import parse_types

        return parse_types(self.reference_attribute_types)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return parse_resolution(self.resolution)

    @property
    def logging_path(self) -> Path:
        return self.logging_dir if self.logging_dir is not None else self.output_dir / "logs"

"""The Diverse Person model: SD-1.5 parts + reference image encoder + fusion, and its training losses."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from dp_cli.data.attributes import DEFAULT_TYPES, parse_types
from dp_cli.errors import ConfigError, ModelError
from dp_models.attention_capture import capture_installed, install_capture, uninstall_capture
from dp_models.fusion import FusionModule
from dp_models.image_encoder import ReferenceImageEncoder
from dp_models.loading import (SD_PARTS, checked_ref, float32_kwargs, model_errors, require_parts,
                               resolve_ref)
from dp_models.losses import LOCALIZATION_KINDS, denoising_loss, localization_loss

CONFIG_NAME = "dp_config.json"
PREDICTION_TYPES = ("epsilon", "v_prediction")
LINKINGS = ("postfuse",)


@dataclass
class DPConfig:
    """What a DP model was trained with; saved as dp_config.json beside the weights."""

    attribute_types: tuple[str, ...] = DEFAULT_TYPES
    img_token_num: int = 1
    max_reference_attributes: int = 3
    resolution: tuple[int, int] = (128, 128)  # (height, width)
    image_encoder_trainable_layers: int = 2
    train_image_encoder: bool = True
    train_text_encoder: bool = False
    prediction_type: str = "epsilon"
    text_image_linking: str = "postfuse"
    localization: bool = True
    localization_weight: float = 1e-3
    localization_loss_type: str = "balanced_l1"
    localization_layers: int = 5  # the middle K of the UNet's blocks with cross-attention
    localization_norm: bool = False
    mask_loss: bool = False
    mask_loss_prob: float = 0.5
    max_length: int | None = None  # tokenizer length; None: the tokenizer's model_max_length
    version: int = 1
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.attribute_types = tuple(self.attribute_types) if not isinstance(self.attribute_types, str) \
            else self.attribute_types
        self.resolution = (self.resolution, self.resolution) if isinstance(self.resolution, int) \
            else tuple(int(r) for r in self.resolution)
        self.validate()

    def validate(self) -> None:
        """Collect every problem into one ConfigError."""
        problems = []
        try:
            self.attribute_types = parse_types(self.attribute_types)
        except ValueError as exc:
            problems.append(f"attribute_types: {exc}")
        checks = [
            (self.prediction_type in PREDICTION_TYPES,
             f"prediction_type {self.prediction_type!r} not in {PREDICTION_TYPES}"),
            (self.text_image_linking in LINKINGS, f"text_image_linking {self.text_image_linking!r} not in {LINKINGS}"),
            (self.localization_loss_type in LOCALIZATION_KINDS,
             f"localization_loss_type {self.localization_loss_type!r} not in {LOCALIZATION_KINDS}"),
            (self.img_token_num == 1, f"img_token_num {self.img_token_num}: only 1 is supported"),
            (self.max_reference_attributes >= 1, f"max_reference_attributes {self.max_reference_attributes} < 1"),
            (len(self.resolution) == 2 and min(self.resolution) > 0, f"resolution {self.resolution} is not (h, w) > 0"),
            (self.image_encoder_trainable_layers >= 0,
             f"image_encoder_trainable_layers {self.image_encoder_trainable_layers} < 0"),
            (0.0 <= self.mask_loss_prob <= 1.0, f"mask_loss_prob {self.mask_loss_prob} not in [0, 1]"),
            (self.localization_weight >= 0, f"localization_weight {self.localization_weight} < 0"),
            (self.localization_layers >= 1, f"localization_layers {self.localization_layers} < 1"),
        ]
        problems += [msg for ok, msg in checks if not ok]
        if problems:
            raise ConfigError("invalid DP model settings", problems)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["attribute_types"], d["resolution"] = list(self.attribute_types), list(self.resolution)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DPConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{CONFIG_NAME}: unknown keys {unknown}", hint=f"known: {', '.join(sorted(known))}")
        return cls(**d)

    def save(self, path: str | os.PathLike) -> None:
        from dp_cli.fsutil import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DPConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read {path}: {exc}") from exc


def _load_sd_parts(ref: str, is_local: bool, **kwargs) -> dict:
    """UNet, VAE, text encoder, tokenizer and DDPM scheduler of an SD-1.5-layout model."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    if is_local:
        require_parts(ref, SD_PARTS, "pretrained model folder", "it needs the Stable Diffusion 1.5 layout "
                      "(unet/, vae/, text_encoder/, tokenizer/, scheduler/)")
    loaders = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
               "tokenizer": CLIPTokenizer, "scheduler": DDPMScheduler}
    parts = {}
    for name, cls in loaders.items():
        # (the repository's other folders, e.g. SD-1.5's safety_checker/ and feature_extractor/, and its
        # fp16 variant files beside the float32 ones are never read: each part loads its float32 weights)
        part_kwargs = float32_kwargs(kwargs) if name == "text_encoder" else kwargs
        with model_errors(ref, name):
            parts[name] = cls.from_pretrained(ref, subfolder=name, **part_kwargs)
    return parts


def resolution_factor(unet, vae) -> int:
    """Image sides must be multiples of this: VAE factor times the UNet's total downsampling."""
    vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    return vae_factor * 2 ** (len(unet.config.block_out_channels) - 1)


class DPModel(nn.Module):
    """SD-1.5 parts + ReferenceImageEncoder + FusionModule; `forward` is `training_losses`."""

    def __init__(self, unet, vae, text_encoder, tokenizer, noise_scheduler, image_encoder: ReferenceImageEncoder,
                 fusion: FusionModule, config: DPConfig):
        super().__init__()
        self.unet, self.vae, self.text_encoder = unet, vae, text_encoder
        self.image_encoder, self.fusion = image_encoder, fusion
        self.tokenizer, self.config = tokenizer, config
        self.noise_scheduler = _with_prediction_type(noise_scheduler, config.prediction_type)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self._store = None
        self._check_resolution()
        self.set_trainable()

    def _check_resolution(self) -> None:
        f = resolution_factor(self.unet, self.vae)
        h, w = self.config.resolution
        if h % f or w % f:
            raise ConfigError(f"resolution {h}x{w} is not divisible by {f} (VAE factor x UNet downsampling)",
                              hint=f"use multiples of {f}, e.g. {max(f, h // f * f)}x{max(f, w // f * f)}")

    def set_trainable(self) -> None:
        """VAE frozen; text encoder frozen unless configured; image encoder: none, last N layers, or all (N=0)."""
        self.vae.requires_grad_(False)
        self.text_encoder.requires_grad_(self.config.train_text_encoder)
        self.unet.requires_grad_(True)
        self.fusion.requires_grad_(True)
        n = self.config.image_encoder_trainable_layers if self.config.train_image_encoder else None
        self.image_encoder.set_trainable_layers(n)  # 0: all of it; ConfigError when n > layers

    def compile_parts(self, mode: str, backend: str = "inductor") -> None:
        """torch.compile the UNet, the text encoder and the image encoder's vision model in place
        (`Module.compile`: weights, state-dict keys and attention processors stay); "none" leaves them eager,
        another mode is torch.compile's (which rejects unknown ones). `backend` is torch.compile's too
        ("aot_eager" traces forward and backward graphs as inductor does, without generating code)."""
        if mode == "none":
            return
        for part in (self.unet, self.text_encoder, self.image_encoder.vision):
            part.compile(mode=mode, backend=backend) if backend == "inductor" else part.compile(backend=backend)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ---- loading and saving -------------------------------------------------------------------------
    @classmethod
    def from_pretrained_parts(cls, pretrained_model: str, image_encoder: str, config: DPConfig,
                              revision: str | None = None, image_encoder_revision: str | None = None,
                              **kwargs) -> "DPModel":
        """Build from an SD-1.5-layout model and a CLIP vision model (hub ids or folders, each at its own hub
        revision); fusion fresh."""
        resolve_ref(image_encoder, "image encoder")  # both references' typos before any hub request
        ref, local = checked_ref(pretrained_model, "pretrained model", revision)
        enc_ref, enc_local = checked_ref(image_encoder, "image encoder", image_encoder_revision)
        parts = _load_sd_parts(ref, local, revision=revision, **kwargs)
        if enc_local:
            require_parts(enc_ref, ("config.json",), "image encoder folder", "it needs a CLIP vision model")
        with model_errors(enc_ref, "image encoder"):
            encoder = ReferenceImageEncoder.from_pretrained(enc_ref, trainable_layers=None,
                                                            revision=image_encoder_revision, **kwargs)
        fusion = FusionModule(text_dim=parts["text_encoder"].config.hidden_size, image_dim=encoder.embed_dim,
                              img_token_num=config.img_token_num)
        return cls(parts["unet"], parts["vae"], parts["text_encoder"], parts["tokenizer"], parts["scheduler"],
                   encoder, fusion, config)

    @classmethod
    def from_pretrained(cls, path_or_hub: str, **kwargs) -> "DPModel":
        """Load a folder written by save_pretrained (or its hub copy)."""
        ref, local = checked_ref(path_or_hub, "DP model")
        if local:
            require_parts(ref, SD_PARTS + ("image_encoder", "fusion", CONFIG_NAME), "DP model folder",
                          "write it with `dp train` (its final folder) or DPModel.save_pretrained")
            config = DPConfig.load(Path(ref) / CONFIG_NAME)
        else:
            from huggingface_hub import hf_hub_download

            with model_errors(ref, CONFIG_NAME):
                config = DPConfig.load(hf_hub_download(ref, CONFIG_NAME))
        parts = _load_sd_parts(ref, False, **kwargs)
        with model_errors(ref, "image_encoder"):
            encoder = ReferenceImageEncoder.from_pretrained(ref, trainable_layers=None, subfolder="image_encoder",
                                                            **kwargs)
        with model_errors(ref, "fusion"):
            fusion = FusionModule.from_pretrained(ref, subfolder="fusion", **kwargs)
        return cls(parts["unet"], parts["vae"], parts["text_encoder"], parts["tokenizer"], parts["scheduler"],
                   encoder, fusion, config)

    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        """Diffusers SD layout + image_encoder/ + fusion/ + dp_config.json (written last: marks completeness)."""
        from diffusers import StableDiffusionPipeline

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        h, w = (int(v) // self.vae_scale_factor for v in self.config.resolution)
        # the trained size where diffusers reads its default: StableDiffusionPipeline(...)("...") makes HxW
        self.unet.register_to_config(sample_size=h if h == w else [h, w])
        pipe = StableDiffusionPipeline(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                                       unet=self.unet, scheduler=self.noise_scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(out, safe_serialization=True)
        self.image_encoder.save_pretrained(out / "image_encoder")
        self.fusion.save_pretrained(out / "fusion", safe_serialization=True)
        self.config.save(out / CONFIG_NAME)
        return out

    # ---- forward pieces -----------------------------------------------------------------------------
    def encode_prompt(self, input_ids: torch.Tensor, ref_pixel_values: torch.Tensor | None = None,
                      token_positions: torch.Tensor | None = None,
                      ref_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Text encoder (+ fusion of the reference images, or of their image-encoder embeddings `ref_embeds`
        [B, A, D] when already computed, into the flagged tokens) -> [B, L, D]."""
        text = self.text_encoder(input_ids.to(self.text_encoder.device))[0]
        if token_positions is None or (ref_pixel_values is None and ref_embeds is None):
            return text
        positions = token_positions.to(text.device)
        if ref_embeds is None:
            ref_embeds = self.image_encoder(ref_pixel_values.to(text.device), valid=positions >= 0)
        return self.fusion(text, ref_embeds.to(text.device), positions)

    @torch.no_grad()
    def vae_latents(self, pixel_values: torch.Tensor, sample: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Unscaled VAE latents of images in [-1, 1] (what a latent cache stores as `latents`)."""
        dist = self.vae.encode(pixel_values.to(self.vae.device, self.vae.dtype)).latent_dist
        return dist.sample(generator) if sample else dist.mode()

    def _capture(self):
        if self._store is None or not capture_installed(self.unet, self._store):
            self._store = install_capture(self.unet, self.config.localization_layers)
        return self._store

    @property
    def attention_store(self):
        """The AttentionStore of the last loss with localization (None before): maps for metrics/benchmarks."""
        return self._store

    def remove_capture(self) -> None:
        """Give the UNet its previous attention processors back."""
        uninstall_capture(self.unet)
        self._store = None

    def forward(self, batch: dict, **kwargs) -> dict:
        return self.training_losses(batch, **kwargs)

    def training_losses(self, batch: dict, noise: torch.Tensor | None = None, timesteps: torch.Tensor | None = None,
                        loc: bool | None = None, mask_loss: bool | None = None,
                        generator: torch.Generator | None = None, keep_all_in_graph: bool = True) -> dict:
        """dict(loss, denoise, loc) for one batch (see docs/MODELS.md); None flags follow the config.
        keep_all_in_graph=False leaves out the zero term that gives every trained parameter a gradient (for
        a caller whose gradients are there anyway, zeroed between steps, and that runs without DDP)."""
        cfg = self.config
        loc = cfg.localization and cfg.localization_weight > 0 if loc is None else loc
        mask_loss = cfg.mask_loss if mask_loss is None else mask_loss
        device = self.unet.device
        # 1. latents, noise, timesteps, target
        latents = batch.get("latents")
        if latents is None:
            latents = self.vae_latents(batch["pixel_values"], generator=generator)
        latents = latents.to(device, self.unet.dtype) * self.vae.config.scaling_factor
        gen_device = generator.device if generator is not None else device
        noise = torch.randn(latents.shape, generator=generator, device=gen_device) if noise is None else noise
        noise = noise.to(device, latents.dtype)
        if timesteps is None:
            timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                      generator=generator, device=gen_device)
        timesteps = timesteps.to(device).long()
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        target = noise if cfg.prediction_type == "epsilon" else \
            self.noise_scheduler.get_velocity(latents, noise, timesteps)
        # 2. text + fused reference embeddings
        valid = batch["attr_valid"].to(device).bool() & (batch["token_positions"].to(device) >= 0)
        positions = torch.where(valid, batch["token_positions"].to(device), -1)
        context = self.encode_prompt(batch["input_ids"], batch["ref_pixel_values"], positions)
        # 3. UNet, capturing the flagged tokens' attention when the localization loss is on
        store = self._capture() if loc else self._store
        if store is not None:
            store.set_token_positions(positions if loc else None)
            store.set_latent_size(tuple(latents.shape[-2:]))
        pred = self.unet(noisy, timesteps, encoder_hidden_states=context).sample
        # 4. losses
        denoise = denoising_loss(pred, target, self._loss_mask(batch, valid, generator) if mask_loss else None)
        loc_loss = pred.new_zeros((), dtype=torch.float32)
        if loc:
            loc_loss = localization_loss(store.pairs(), batch["attr_masks"].to(device), valid,
                                         kind=cfg.localization_loss_type, normalize=cfg.localization_norm)
        loss = denoise + cfg.localization_weight * loc_loss
        # keep every trainable parameter in the graph even when no slot is valid (DDP without
        # find_unused_parameters); always, since testing `valid.any()` would make the host wait for the GPU
        if keep_all_in_graph:
            loss = loss + 0.0 * sum(p.sum() for m in (self.fusion, self.image_encoder)
                                    for p in m.parameters() if p.requires_grad)
        return {"loss": loss, "denoise": denoise, "loc": loc_loss}

    def _loss_mask(self, batch: dict, valid: torch.Tensor, generator) -> torch.Tensor | None:
        """With probability mask_loss_prob: the union of valid attribute masks (whole image where empty)."""
        gen_device = generator.device if generator is not None else "cpu"
        if torch.rand((), generator=generator, device=gen_device).item() >= self.config.mask_loss_prob:
            return None
        masks = batch["attr_masks"].to(valid.device).float() * valid[..., None, None].float()
        union = masks.amax(dim=1)  # [B, H, W]
        empty = union.flatten(1).sum(-1) == 0
        return torch.where(empty[:, None, None], torch.ones_like(union), union)


def _with_prediction_type(scheduler, prediction_type: str):
    """The same scheduler, predicting what the DP config says (saved with the model)."""
    if scheduler.config.prediction_type == prediction_type:
        return scheduler
    return type(scheduler).from_config(scheduler.config, prediction_type=prediction_type)

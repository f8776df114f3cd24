"""The Diverse Person editing pipeline: put reference attributes on a person, keep everything else.

Read top to bottom: helpers (prompt building, masks, schedulers), then `DPEditPipeline`, whose
`__call__` is a sequence of numbered steps. The model is a `models.dp_model.DPModel`; its
`encode_prompt` fuses the reference embeddings into the flagged noun tokens.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from dp_cli.data.attributes import ATTRIBUTE_TYPES, add_phrase, drop_adjectives, find_nouns, first_noun
from dp_cli.data.images import grow_mask, to_vae_pixels

if TYPE_CHECKING:  # pragma: no cover
    from diffusers import SchedulerMixin

    from dp_models.dp_model import DPModel

logger = logging.getLogger(__name__)

# Scheduler name -> (diffusers class name, extra config). Ancestral samplers are left out on purpose:
# they draw noise inside `step` from one generator, which breaks "batched == unbatched" per-image seeds.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpm-solver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
REFERENCE_CACHE_SIZE = 256  # reference embeddings kept across calls (jobs of a variant come one after another)


def make_scheduler(name: str, base_config: Any) -> "SchedulerMixin":
    """A diffusers scheduler by name, built from the model's own scheduler config."""
    import diffusers

    if name not in SCHEDULERS:
        raise ValueError(f"scheduler={name!r} is not known; use one of {', '.join(SCHEDULERS)}")
    cls_name, extra = SCHEDULERS[name]
    return getattr(diffusers, cls_name).from_config(base_config, **extra)


@dataclass
class Reference:
    """One reference attribute: its type ('hair'), the image, and a label ('white skirt')."""

    type: str
    image: Image.Image
    label: str


@dataclass
class PromptBinding:
    """How one reference was bound to a token of the prompt."""

    type: str
    label: str
    noun: str  # the word whose token carries the reference
    replaced: str | None  # the original phrase ('red and yellow skirt'), None when a phrase was added
    added_phrase: bool


@dataclass
class EditPrompt:
    """The prompt actually encoded, the char span of each reference's noun, and what was done."""

    text: str
    spans: list[tuple[int, int]]
    bindings: list[PromptBinding]


def phrase_label(type_name: str, label: str) -> str:
    """A label that names the attribute's noun ('gold' -> 'gold hair'), for added phrases."""
    if find_nouns(label, (type_name,)):
        return label
    return f"{label} {ATTRIBUTE_TYPES[type_name].nouns[0]}".strip()


def build_edit_prompt(caption: str, refs: Sequence[tuple[str, str]], keep_adjectives: bool = False,
                      label_in_prompt: bool = False) -> EditPrompt:
    """Strip the replaced attributes' adjectives (or write the references' labels in their place), add a
    phrase for missing nouns, and locate each noun."""
    found = {t: first_noun(caption, t) for t, _ in refs}
    replaced = {t: caption[m.phrase_start:m.end] if m else None for t, m in found.items()}
    spans: dict[str, tuple[int, int]] = {}
    if label_in_prompt:
        text, spans = _labels_for_phrases(caption, [(found[t], t, label) for t, label in refs if found[t] is not None])
    else:
        text = caption if keep_adjectives else drop_adjectives(caption, [m for m in found.values() if m is not None])
        for t, _ in refs:
            m = first_noun(text, t) if found[t] is not None else None
            if m is not None:
                spans[t] = (m.start, m.end)
    for t, label in refs:
        if t in spans:
            continue
        tail = len(text.rstrip().rstrip("."))
        text = add_phrase(text, t, phrase_label(t, label))
        m = first_noun(text[tail:], t)
        spans[t] = (tail + m.start, tail + m.end)
    bindings = [PromptBinding(t, label, text[spans[t][0]:spans[t][1]], replaced[t], replaced[t] is None)
                for t, label in refs]
    return EditPrompt(text, [spans[t] for t, _ in refs], bindings)


def _labels_for_phrases(caption: str, found: list) -> tuple[str, dict[str, tuple[int, int]]]:
    """Each found phrase ('red and yellow skirt') replaced by its reference's label ('white shorts'), and
    the span of each label's own noun (not searched again: a label may hold another type's noun)."""
    parts: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    pos = 0
    for m, type_name, label in sorted(found, key=lambda f: f[0].phrase_start):
        if m.phrase_start < pos:  # overlapping phrases: keep the first replacement
            continue
        parts.append(caption[pos:m.phrase_start])
        start = sum(len(p) for p in parts)
        phrase = phrase_label(type_name, label)
        noun = first_noun(phrase, type_name)
        spans[type_name] = (start + noun.start, start + noun.end)
        parts.append(phrase)
        pos = m.end
    parts.append(caption[pos:])
    return "".join(parts), spans


def _picture_key(image: Image.Image) -> tuple:
    """Identifies a picture by its content (the same prepared reference in every job of a variant)."""
    return image.mode, image.size, hashlib.blake2b(image.tobytes(), digest_size=16).digest()


def feather_alpha(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Alpha in [0, 1]: 1 on the mask, a Gaussian fall-off of radius `pixels` outside it, exact 0 beyond."""
    hard = mask.astype(np.float32)
    if pixels <= 0:
        return hard
    blurred = Image.fromarray(mask.astype(np.uint8) * 255, "L").filter(ImageFilter.GaussianBlur(pixels))
    return np.maximum(hard, np.asarray(blurred, dtype=np.float32) / 255.0)


def to_pixels(images: Sequence[Image.Image], size_hw: tuple[int, int]) -> torch.Tensor:
    """PIL images -> [B,3,H,W] in [-1, 1] at the model resolution."""
    return torch.stack([to_vae_pixels(im, size_hw) for im in images])


def to_images(pixels: torch.Tensor) -> list[Image.Image]:
    """[B,3,H,W] in [-1, 1] -> PIL images."""
    arr = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, "RGB") for a in arr]


@dataclass
class EditPipelineOutput:
    """Edited images (source size), the masks used (L 0/255: where pixels may differ), the prompts."""

    images: list[Image.Image]
    masks: list[Image.Image]
    prompts: list[EditPrompt]
    latent_masks: torch.Tensor | None = field(default=None, repr=False)  # [B,1,h,w]: 1 where denoised
    latents: torch.Tensor | None = field(default=None, repr=False)  # final latents, before decoding


class DPEditPipeline:
    """Edit the attributes of person images after reference images, keeping everything else.

    Built on a model it does not own (e.g. a training run sampling), it leaves the model's train/eval
    mode and attention processors alone; `from_pretrained` loads its own copy in eval mode with SDPA.
    """

    def __init__(self, model: "DPModel", scheduler: "SchedulerMixin", *, device: str | torch.device = "cpu",
                 precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not known; use one of {', '.join(PRECISIONS)}")
        self.model = model
        self.scheduler = scheduler
        self.device = torch.device(device)
        self.dtype = PRECISIONS[precision]
        # the SD VAE overflows in fp16: keep it in fp32 then, like diffusers' upcast_vae
        self.vae_dtype = torch.float32 if self.dtype == torch.float16 else self.dtype
        model.to(self.device)
        if self.dtype != torch.float32:
            for part in (model.unet, model.text_encoder, model.image_encoder, model.fusion):
                part.to(dtype=self.dtype)
            model.vae.to(dtype=self.vae_dtype)

    @classmethod
    def from_pretrained(cls, path_or_hub: str, scheduler: str = "ddim", device: str | torch.device = "cpu",
                        precision: str = "fp32", compile: str = "none") -> "DPEditPipeline":
        """Load a model folder written by `dp train` (or a hub id) and build the named scheduler; `compile`: a
        torch.compile mode for the UNet and encoders ("none": eager)."""
        from dp_models.dp_model import DPModel

        from diffusers.models.attention_processor import AttnProcessor2_0

        model = DPModel.from_pretrained(path_or_hub).eval().requires_grad_(False)  # our own copy, for inference
        model.unet.set_attn_processor(AttnProcessor2_0())  # SDPA everywhere (our own fresh copy)
        pipe = cls(model, make_scheduler(scheduler, model.noise_scheduler.config), device=device, precision=precision)
        model.compile_parts(compile)  # after the move to the device and dtype
        return pipe

    @property
    def resolution(self) -> tuple[int, int]:
        h, w = self.model.config.resolution
        return int(h), int(w)

    @property
    def max_attributes(self) -> int:
        return int(self.model.config.max_reference_attributes)

    # ------------------------------------------------------------------ steps
    def check_inputs(self, images, masks, captions, references, seeds, num_inference_steps, guidance_scale,
                     delayed_conditioning, mask_dilation, feather, reference_scale: float = 1.0) -> None:
        """Every argument checked loudly: a ValueError naming the argument and the bad value."""
        n = len(images)
        if n == 0:
            raise ValueError("image: at least one image is needed")
        for name, seq in (("mask", masks), ("caption", captions), ("references", references), ("seed", seeds)):
            if len(seq) != n:
                raise ValueError(f"{name}: {len(seq)} given for {n} image(s)")
        for i, (im, m) in enumerate(zip(images, masks)):
            if not isinstance(im, Image.Image):
                raise ValueError(f"image[{i}]: expected a PIL image, got {type(im).__name__}")
            if m.shape != (im.size[1], im.size[0]):
                raise ValueError(f"mask[{i}]: shape {m.shape} differs from the image size (h, w) "
                                 f"{(im.size[1], im.size[0])}")
        for i, refs in enumerate(references):
            self._check_refs(i, refs)
        for i, c in enumerate(captions):
            if not isinstance(c, str) or not c.strip():
                raise ValueError(f"caption[{i}]: empty caption {c!r}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps={num_inference_steps!r}: must be an integer >= 1")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale={guidance_scale!r}: must be >= 0 (1 = no guidance)")
        if not 0.0 <= delayed_conditioning <= 1.0:
            raise ValueError(f"delayed_conditioning={delayed_conditioning!r}: a fraction of the steps in [0, 1]")
        if not 0.0 <= reference_scale <= 10.0:
            raise ValueError(f"reference_scale={reference_scale!r}: must be in [0, 10] (1 = as trained)")
        for name, v in (("mask_dilation", mask_dilation), ("feather", feather)):
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}={v!r}: must be an integer number of pixels >= 0")

    def _check_refs(self, i: int, refs: Sequence[Reference]) -> None:
        if not refs:
            raise ValueError(f"references[{i}]: at least one reference attribute is needed")
        if len(refs) > self.max_attributes:
            raise ValueError(f"references[{i}]: {len(refs)} references, the model takes at most "
                             f"{self.max_attributes}")
        types = [r.type for r in refs]
        for r in refs:
            if r.type not in ATTRIBUTE_TYPES:
                raise ValueError(f"references[{i}]: unknown attribute type {r.type!r}; known: "
                                 f"{', '.join(ATTRIBUTE_TYPES)}")
            if not isinstance(r.image, Image.Image):
                raise ValueError(f"references[{i}] {r.type}: image must be a PIL image")
        if len(set(types)) != len(types):
            raise ValueError(f"references[{i}]: attribute type given twice in {types}")

    def encode(self, prompts: list[EditPrompt], references: list[list[Reference]]):
        """(uncond, text-only, fused) prompt embeddings, each [B, L, D]."""
        from dp_models.tokens import flag_noun_tokens

        m = self.model
        ids, positions = flag_noun_tokens(m.tokenizer, [p.text for p in prompts], [p.spans for p in prompts],
                                          max_attributes=self.max_attributes)
        ids, positions = ids.to(self.device), positions.to(self.device)
        fused = m.encode_prompt(ids, token_positions=positions, ref_embeds=self.reference_embeddings(references))
        text_only = m.encode_prompt(ids)
        return self.uncond_embedding(ids.shape[1]).expand(len(prompts), -1, -1), text_only, fused

    def reference_embeddings(self, references: list[list[Reference]]) -> torch.Tensor:
        """[B, A, D] image-encoder embeddings (zeros in empty slots), each distinct picture encoded once: a
        variant's references are the same for all its person's images. Kept across calls while the image
        encoder is frozen (not when a training run samples with a trainable one)."""
        from dp_models.image_encoder import preprocess_reference

        enc = self.model.image_encoder
        cache = self.__dict__.setdefault("_references", OrderedDict())
        if any(p.requires_grad for p in enc.parameters()):
            cache.clear()
        keys = [[_picture_key(r.image) for r in rs] for rs in references]
        new = {k: r.image for rs, ks in zip(references, keys) for r, k in zip(rs, ks) if k not in cache}
        if new:
            pix = preprocess_reference([im.convert("RGB") for im in new.values()], enc.image_size, enc.mean, enc.std)
            cache.update(zip(new, enc(pix[None].to(self.device, self.dtype))[0]))
        out = torch.zeros(len(references), self.max_attributes, enc.embed_dim, device=self.device, dtype=self.dtype)
        slots = [(b, a, k) for b, ks in enumerate(keys) for a, k in enumerate(ks)]
        for _, _, k in slots:
            cache.move_to_end(k)
        if slots:  # one copy for the batch, not one per slot (each would be a kernel launch on a GPU)
            b_idx, a_idx, ks = zip(*slots)
            out[list(b_idx), list(a_idx)] = torch.stack([cache[k] for k in ks]).to(out.dtype)
        while len(cache) > REFERENCE_CACHE_SIZE:
            cache.popitem(last=False)
        return out

    def uncond_embedding(self, length: int) -> torch.Tensor:
        """The empty prompt's embedding [1, L, D] for classifier-free guidance (cached while the text
        encoder is frozen, e.g. not when a training run with a trainable text encoder samples)."""
        from dp_models.tokens import flag_noun_tokens

        cache = self.__dict__.setdefault("_uncond", {})
        if length in cache:
            return cache[length]
        empty, _ = flag_noun_tokens(self.model.tokenizer, [""], [[]], max_length=length,
                                    max_attributes=self.max_attributes)
        emb = self.model.encode_prompt(empty.to(self.device))
        if not any(p.requires_grad for p in self.model.text_encoder.parameters()):
            cache[length] = emb
        return emb

    def prepare_masks(self, masks: list[np.ndarray], mask_dilation: int, feather: int):
        """Latent masks [B,1,h,w] (max-pooled dilated masks) and per-image composite alphas at source size."""
        h, w = self.resolution
        f = int(self.model.vae_scale_factor)
        latent_masks, alphas = [], []
        for m in masks:
            dil = grow_mask(m, mask_dilation)
            big = torch.from_numpy(dil.astype(np.float32))[None, None]
            model_res = F.interpolate(big, size=(h, w), mode="bilinear", align_corners=False) > 0
            lat = F.max_pool2d(model_res.float(), kernel_size=f, stride=f)
            back = F.interpolate(lat, size=m.shape, mode="nearest")[0, 0].numpy() > 0
            alphas.append(feather_alpha(dil | back, feather))
            latent_masks.append(lat)
        return torch.cat(latent_masks).to(self.device, self.dtype), alphas

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """VAE latents (distribution mode, scaled) of [B,3,H,W] pixels."""
        vae = self.model.vae
        dist = vae.encode(pixels.to(self.device, self.vae_dtype)).latent_dist
        return (dist.mode() * vae.config.scaling_factor).to(self.dtype)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.model.vae
        return vae.decode(latents.to(self.vae_dtype) / vae.config.scaling_factor).sample

    def prepare_noise(self, seeds: list[int], shape: tuple[int, ...]) -> torch.Tensor:
        """One CPU generator per image, so a batched run equals the unbatched ones."""
        noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(int(s))) for s in seeds]
        return torch.stack(noise).to(self.device, self.dtype)

    def unet_cfg(self, latents, t, cond, uncond, guidance_scale: float) -> torch.Tensor:
        """One UNet call with classifier-free guidance (one batched forward of [uncond, cond])."""
        sched, unet = self.scheduler, self.model.unet
        if guidance_scale == 1.0:
            return unet(sched.scale_model_input(latents, t), t, encoder_hidden_states=cond).sample
        x = sched.scale_model_input(torch.cat([latents, latents]), t)
        eps_u, eps_c = unet(x, t, encoder_hidden_states=torch.cat([uncond, cond])).sample.chunk(2)
        return eps_u + guidance_scale * (eps_c - eps_u)

    def denoise(self, noise, source_latents, latent_mask, uncond, text_only, fused, num_inference_steps,
                guidance_scale, delayed_conditioning) -> torch.Tensor:
        """The denoising loop with delayed conditioning and blended latents outside the edit mask."""
        sched = self.scheduler
        sched.set_timesteps(num_inference_steps, device=self.device)
        timesteps = sched.timesteps
        latents = noise * sched.init_noise_sigma
        switch = int(round(delayed_conditioning * len(timesteps)))
        for i, t in enumerate(timesteps):
            cond = text_only if i < switch else fused
            eps = self.unet_cfg(latents, t, cond, uncond, guidance_scale)
            latents = sched.step(eps, t, latents, return_dict=False)[0]
            if i + 1 < len(timesteps):  # keep the source outside the mask, noised to the next step
                known = sched.add_noise(source_latents, noise, timesteps[i + 1:i + 2])
            else:
                known = source_latents
            latents = latent_mask * latents + (1 - latent_mask) * known
        return latents

    def finish(self, pixels: torch.Tensor, images: list[Image.Image], alphas: list[np.ndarray],
               composite: bool) -> list[Image.Image]:
        """Back to each source's size; paste the source back outside the feathered mask."""
        out = []
        for im, edited, alpha in zip(images, to_images(pixels), alphas):
            if edited.size != im.size:
                edited = edited.resize(im.size, Image.BICUBIC)
            if composite:
                src = np.asarray(im.convert("RGB"), dtype=np.float32)
                a = alpha[..., None]
                mixed = src * (1 - a) + np.asarray(edited, dtype=np.float32) * a
                edited = Image.fromarray(np.where(a > 0, mixed.round(), src).astype(np.uint8), "RGB")
            out.append(edited)
        return out

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(self, image: Image.Image | list[Image.Image], mask: np.ndarray | list[np.ndarray],
                 caption: str | list[str], references: list[Reference] | list[list[Reference]], *,
                 seed: int | list[int] = 0, num_inference_steps: int = 25, guidance_scale: float = 5.0,
                 delayed_conditioning: float = 0.3, mask_dilation: int = 4, feather: int = 2,
                 composite: bool = True, keep_adjectives: bool = False,
                 label_in_prompt: bool = False, reference_scale: float = 1.0) -> EditPipelineOutput:
        """Edit a batch: `mask` is each image's union of the edited attributes' masks (bool, h x w).
        `reference_scale` s extrapolates the references' part of the prompt embedding: text-only +
        s * (fused - text-only); 1 is the model as trained, 0 ignores the references."""
        # 0. Normalise single inputs to batches of one
        single = isinstance(image, Image.Image)
        images = [image] if single else list(image)
        masks = [np.asarray(m).astype(bool) for m in ([mask] if single else mask)]
        captions = [caption] if isinstance(caption, str) else list(caption)
        refs = [references] if single else [list(r) for r in references]
        seeds = [seed] * len(images) if isinstance(seed, int) else list(seed)

        # 1. Check inputs
        self.check_inputs(images, masks, captions, refs, seeds, num_inference_steps, guidance_scale,
                          delayed_conditioning, mask_dilation, feather, reference_scale)

        # 2. Build the prompts: adjectives of replaced attributes out, phrases for missing nouns in
        prompts = [build_edit_prompt(c, [(r.type, r.label) for r in rs], keep_adjectives, label_in_prompt)
                   for c, rs in zip(captions, refs)]

        # 3. Encode the prompts (unconditional, text-only for delayed conditioning, fused)
        uncond, text_only, fused = self.encode(prompts, refs)
        if reference_scale != 1.0:
            fused = text_only + reference_scale * (fused - text_only)

        # 4. Encode the sources to latents at the model resolution
        source_latents = self.encode_images(to_pixels(images, self.resolution))

        # 5. Masks: dilated, max-pooled to the latent grid; feathered alphas for compositing
        latent_mask, alphas = self.prepare_masks(masks, mask_dilation, feather)

        # 6. Initial noise, one generator per image
        noise = self.prepare_noise(seeds, tuple(source_latents.shape[1:]))

        # 7. Denoising loop
        latents = self.denoise(noise, source_latents, latent_mask, uncond, text_only, fused,
                               num_inference_steps, guidance_scale, delayed_conditioning)

        # 8. Decode, resize back, composite
        out = self.finish(self.decode_latents(latents), images, alphas, composite)
        used = [Image.fromarray(((a > 0) * 255).astype(np.uint8), "L") for a in alphas]
        return EditPipelineOutput(out, used, prompts, latent_mask, latents)

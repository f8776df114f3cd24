"""`[edit]`: which people to edit with which catalog attributes, with which model and sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from dp_cli.config import Section, path_or_hub
from dp_cli.errors import ConfigError
from dp_cli.train.config import COMPILE_MODES


class EditConfig(Section):
    """Settings of `dp edit` (dataset mode; the sampler settings also apply to single-image mode)."""

    model: Optional[str] = path_or_hub(
        default=None, json_schema_extra={"env": "DP_EDIT_MODEL"},
        description="Model folder written by `dp train`, or a hub id; unset: the toy model shipped with dp.")
    dataset: Optional[Path] = Field(None, description="Person dataset folder (annotations.jsonl with parsing maps).")
    split: Literal["train", "val", "test"] = Field("train", description="Which split's persons to edit.")
    catalog: Optional[Path] = Field(None, description="Attribute catalog folder (catalog.jsonl) of reference images.")
    types: list[str] = Field(["hair", "uppercloth", "bottomcloth"],
                             description="Attribute types a variant may replace ('hair_uppercloth' also accepted).")
    attributes_per_variant: int = Field(1, ge=1, description="How many of `types` one variant replaces.")
    variants_per_person: int = Field(1, ge=1, description="New identities made from each person.")
    persons: Optional[int] = Field(None, ge=1, description="How many persons to edit (seeded sample); unset: all.")
    max_images_per_person: Optional[int] = Field(None, ge=1, description="Cap on images per variant; unset: all.")
    output_dir: Path = Field(Path("edit-out"), description="Where images/, masks/ and edits.jsonl go.")
    seed: int = Field(0, description="Seed of the variant plan and of each image's noise.")
    scheduler: Literal["ddim", "dpm-solver++", "euler", "pndm", "unipc"] = Field(
        "ddim", description="Diffusers sampler, built from the model's scheduler config.")
    steps: int = Field(25, ge=1, le=1000, description="Denoising steps.")
    guidance_scale: float = Field(5.0, ge=0, description="Classifier-free guidance scale (1 = off).")
    delayed_conditioning: float = Field(
        0.0, ge=0, le=1, description="Fraction of the steps that use the text-only embedding (FastComposer).")
    mask_dilation: int = Field(4, ge=0, description="Pixels the edit mask grows by (lets a skirt replace trousers).")
    feather: int = Field(2, ge=0, description="Pixels of soft edge when pasting the source back.")
    composite: bool = Field(True, description="Paste the source pixels back outside the feathered edit mask.")
    keep_adjectives: bool = Field(False, description="Keep the replaced attribute's adjectives in the prompt.")
    label_in_prompt: bool = Field(False, description="Write each reference's label in place of the replaced "
                                  "phrase ('a red and yellow skirt' -> 'a white skirt'; wins over keep_adjectives).")
    candidates: int = Field(1, ge=1, le=16, description="Seeds tried per edit; the best-verified one is kept.")
    min_score: float = Field(0.5, ge=0, le=1, description="Verifier score below which an edit is marked failed "
                             "(left out of exports, not annotated).")
    precision: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="Weights and activations dtype.")
    batch_size: int = Field(8, ge=1, description="Images per pipeline call (per process).")
    compile: Literal[COMPILE_MODES] = Field(
        "none", description="torch.compile the UNet and encoders: none, default, reduce-overhead (plus CUDA graphs "
                            "on a GPU) or max-autotune; the first batches compile (minutes).")
    device: str = Field("auto", description="auto (the process's GPU if any, else CPU), cpu, cuda, cuda:1, ...")
    contact_sheet: bool = Field(False, description="Also write contact_sheet.png (original | references | edit).")
    contact_sheet_rows: int = Field(16, ge=1, description="Rows (edited images) on the contact sheet.")

    @field_validator("types", mode="before")
    @classmethod
    def _types(cls, v):
        from dp_cli.data.attributes import parse_types

        return list(parse_types(v))

    def with_start_merge_step(self, step: int) -> "EditConfig":
        """This config with the references taking over at step index `step` (the seed's start_merge_step):
        delayed_conditioning = step / steps, which the pipeline turns back into exactly `step`."""
        if not 0 <= step <= self.steps:
            raise ConfigError(f"start_merge_step {step} is not a step of the {self.steps} denoising steps",
                              hint=f"use 0 .. {self.steps}, or raise --steps")
        return self.model_copy(update={"delayed_conditioning": step / self.steps})

    @model_validator(mode="after")
    def _enough_types(self) -> "EditConfig":
        if self.attributes_per_variant > len(self.types):
            raise ValueError(f"attributes_per_variant={self.attributes_per_variant} is more than the "
                             f"{len(self.types)} type(s) in types={self.types}")
        return self

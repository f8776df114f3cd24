"""`[edit]`: which people to edit with which catalog attributes, with which model and sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BeforeValidator, Field, model_validator

from dp_cli.config import Section, path_or_hub
from dp_cli.errors import ConfigError
from dp_cli.train.config import COMPILE_MODES

# Bounds shared with the sections that pass these values on to dp edit (`[demo]`): one place to change them.
Steps = Annotated[int, Field(ge=1, le=1000)]
Guidance = Annotated[float, Field(ge=0)]
Candidates = Annotated[int, Field(ge=1, le=16)]
Retries = Annotated[int, Field(ge=0, le=15)]
Score = Annotated[float, Field(ge=0, le=1)]
Variants = Annotated[int, Field(ge=1)]


def _parse_types(v):
    from dp_cli.data.attributes import parse_types

    return list(parse_types(v))


# attribute type names: a list, or one string like "hair_uppercloth"; unknown names are refused
AttributeTypes = Annotated[list[str], BeforeValidator(_parse_types)]


class EditConfig(Section):
    """`dp edit`: put catalog attributes (hair, clothes, shoes, ...) on the persons of a dataset.
    Example: dp edit --dataset toy-world --catalog toy-world/catalog --output-dir edits --persons 10
    One image instead:
      dp edit --image p.png --parsing p_parsing.png --caption "..." --attribute hair=gold.png --out e.png
    Relative paths resolve against this file's folder."""

    model: Optional[str] = path_or_hub(
        default=None, json_schema_extra={"env": "DP_EDIT_MODEL"},
        description="Folder written by `dp train`, or a hub id (default: the shipped toy model)",
        examples=["runs/dp/model"])
    dataset: Optional[Path] = Field(None, description="Person dataset (folder or annotation file) with parsing maps"
                                                      " (default: none)", examples=["toy-world"])
    split: Literal["train", "val", "test"] = Field("train", description="Split whose persons are edited: train | val | "
                                                                        "test")
    catalog: Optional[Path] = Field(None, description="Folder with catalog.jsonl of reference images (default: "
                                                      "none)", examples=["toy-world/catalog"])
    types: AttributeTypes = Field(["hair", "uppercloth", "bottomcloth"],
                             description="Attribute types a variant may replace (\"hair_uppercloth\" also works)")
    attributes_per_variant: int = Field(1, ge=1, description="How many of those types one variant replaces")
    variants_per_person: Variants = Field(1, description="New identities made from each person (one set of "
                                                          "references each)")
    persons: Optional[int] = Field(None, ge=1, description="How many persons (seeded sample); default: all",
                                               examples=[100])
    max_images_per_person: Optional[int] = Field(None, ge=1, description="Cap on a variant's images; default: all "
                                                                         "of the person's images", examples=[4])
    output_dir: Path = Field(Path("edit-out"), description="Output folder: images/, masks/, edits.jsonl (+ "
                                                           "contact_sheet.png)")
    seed: int = Field(0, description="Seed of the plan and (with the image id) of each image's noise")
    scheduler: Literal["ddim", "dpm-solver++", "euler", "pndm", "unipc"] = Field(
        "ddim", description="Sampler: ddim | dpm-solver++ | euler | pndm | unipc (built from the model's config)")
    steps: Steps = Field(25, description="Denoising steps")
    guidance_scale: Guidance = Field(5.0, description="Classifier-free guidance (1 = off)")
    delayed_conditioning: float = Field(
        0.0, ge=0, le=1, description="Fraction of the steps with the text-only embedding (FastComposer); 0 measured"
                                     " best (flag --start-merge-step N, the seed's step index, sets it to N / "
                                     "steps)")
    reference_scale: float = Field(1.5, ge=0, le=10, description="How strongly the references steer: the prompt "
                                   "embedding is text-only + scale x (fused - text-only); 1 = the model as trained, 0 "
                                   "= no references; 1.5 measured best on the toy world")
    mask_dilation: int = Field(4, ge=0, description="Pixels the edit mask grows by (lets a skirt replace trousers)")
    feather: int = Field(2, ge=0, description="Soft-edge pixels when pasting the source back")
    composite: bool = Field(True, description="Paste the source pixels back outside the feathered edit mask")
    keep_adjectives: bool = Field(False, description="Keep \"red and yellow\" in \"a red and yellow skirt\" when "
                                                     "replacing it")
    label_in_prompt: bool = Field(False, description='Write the reference\'s label over the replaced phrase ("a '
                                                     "white skirt\"); wins over keep_adjectives")
    candidates: Candidates = Field(1, description="Seeds tried per edit (batched); the verifier's best one is"
                                                        " kept")
    retries: Retries = Field(0, description="Rounds of new seeds (candidates per round) for an edit whose "
                                                     "candidates all fail the verifier; the best of all is kept")
    min_score: Score = Field(0.5, description="Verifier score (0..1) below which an edit is marked "
                                                          "failed: not exported, not annotated")
    precision: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="Precision: fp32 | fp16 | bf16")
    batch_size: int = Field(8, ge=1, description="Images per pipeline call (candidates included), per process")
    compile: Literal[COMPILE_MODES] = Field(
        "none", description="torch.compile the UNet and encoders: none, default, reduce-overhead (plus CUDA graphs "
                            "on a GPU) or max-autotune; the first batches compile (minutes)")
    device: str = Field("auto", description="Device: auto (this process's GPU, else CPU) | cpu | cuda | cuda:1")
    contact_sheet: bool = Field(False, description="Also write contact_sheet.png (original | references | edit)")
    contact_sheet_rows: int = Field(16, ge=1, description="Edited images on the contact sheet")

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

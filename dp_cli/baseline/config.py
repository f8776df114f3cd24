"""`[baseline]`: train a TBPS retrieval baseline on the original and on the grown training set."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from dp_cli.config import Section, path_or_hub

# The field's practice (IRRA, CVPR 2023) and a preset that finishes in minutes on a CPU.
PRESETS: dict[str, dict] = {
    "irra": {"clip_model": "openai/clip-vit-base-patch16", "image_size": "384x128", "batch_size": 64,
             "epochs": 60, "lr": 1e-5, "temperature": 0.02, "warmup_epochs": 5, "max_text_length": 77},
    "toy": {"clip_model": None, "image_size": "64x32", "batch_size": 32, "epochs": 8, "lr": 5e-4,
            "temperature": 0.05, "warmup_epochs": 1, "max_text_length": 48},
}


class BaselineConfig(Section):
    """`dp baseline` trains a CLIP retrieval model (ITC + IRRA's SDM loss) on the original
    training split and on original + generated records, scores both on the test split with `dp eval`'s
    metrics, and prints both rows and the gain. Keys left unset take the preset's value."""

    preset: Literal["irra", "toy"] = Field("toy", description="Preset for unset keys: irra (CLIP ViT-B/16, 384x128,"
                                                              " batch 64, 60 epochs, lr 1e-5) or toy (tiny CLIP "
                                                              "from scratch, minutes on CPU)")
    clip_model: Optional[str] = path_or_hub(
        default=None, description="CLIP hub id or local folder (irra preset: openai/clip-vit-base-patch16); unset "
                                  "with toy: a tiny CLIP from scratch", examples=["openai/clip-vit-base-patch16"])
    dataset: Optional[Path] = Field(None, description="Person dataset (folder or annotation file) with train and "
                                                      "test splits", examples=["data/toy"])
    dataset_format: Optional[str] = Field(None, description="Dataset format; unset: detected from the file",
                                                examples=["cuhk-pedes"])
    edits: Optional[Path] = Field(None, description="edits.jsonl from `dp edit` (the generated images); unset: "
                                                    "\"grown\" is the original set (gain 0)",
                                                    examples=["edits/edits.jsonl"])
    annotations: Optional[Path] = Field(None, description="annotations.jsonl from `dp annotate` for those edits "
                                                          "(default: annotations.jsonl beside edits.jsonl)",
                                                          examples=["edits/annotations.jsonl"])
    include_failed_edits: bool = Field(False, description="Also train on edits that failed dp edit's verifier (as "
                                                          "`dp export --include-failed-edits`)")
    output_dir: Path = Field(Path("baseline-runs"), description="Where runs, checkpoints and results.json go")
    image_size: Optional[str] = Field(None, description="Input size HxW (irra: 384x128, toy: 64x32)",
                                            examples=["384x128"])
    batch_size: Optional[int] = Field(None, ge=2, description="Training batch size per process (irra: 64)",
                                                  examples=[64])
    epochs: Optional[int] = Field(None, ge=1, description="Training epochs (irra: 60)", examples=[60])
    lr: Optional[float] = Field(None, gt=0, description="AdamW learning rate (irra: 1e-5)", examples=[1e-05])
    weight_decay: float = Field(4e-5, ge=0, description="AdamW weight decay")
    warmup_epochs: Optional[int] = Field(None, ge=0, description="Linear warm-up epochs, then cosine decay (irra: "
                                                                 "5)", examples=[5])
    temperature: Optional[float] = Field(None, gt=0, description="Similarity temperature; the logit scale is "
                                                                 "1/temperature (irra: 0.02)", examples=[0.02])
    losses: list[str] = Field(["itc", "sdm"], description="Losses: itc (image-text contrastive) and/or sdm "
                                                          "(similarity distribution matching)")
    seeds: list[int] = Field([0], description="One original/grown pair per seed; several seeds give mean and spread")
    max_text_length: Optional[int] = Field(None, ge=8, description="Caption length in tokens (irra: 77)", examples=[77])
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field("no", description="Mixed precision: no, fp16 or bf16")
    eval_batch_size: int = Field(128, ge=1, description="Batch size when embedding the test split")
    runs: Literal["both", "original", "grown"] = Field("both", description="Which training sets to train: both, "
                                                                           "original or grown")

    @field_validator("losses")
    @classmethod
    def _known_losses(cls, v: list[str]) -> list[str]:
        from dp_cli.baseline.losses import LOSSES

        bad = [x for x in v if x not in LOSSES]
        if bad or not v:
            raise ValueError(f"unknown loss(es) {bad}; use any of {sorted(LOSSES)}")
        return v

    @field_validator("image_size")
    @classmethod
    def _size(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            parse_size(v)
        return v

    @model_validator(mode="after")
    def _apply_preset(self) -> "BaselineConfig":
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        return self

    @property
    def size(self) -> tuple[int, int]:
        return parse_size(self.image_size)


def parse_size(text: str) -> tuple[int, int]:
    """'384x128' -> (384, 128); '224' -> (224, 224)."""
    parts = str(text).lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        h = w = 0
    if h <= 0 or w <= 0:
        raise ValueError("image size must be HxW or N with positive integers, e.g. 384x128 or 224")
    return h, w

"""Settings of `dp eval` (TOML table `[eval]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, field_validator

from dp_cli.config import Section, path_or_hub
from dp_cli.data.images import CLIP_MEAN, CLIP_STD


class EvalConfig(Section):
    """`dp eval retrieval | edits | captions` (each key is also a flag where it makes sense).
    Flags win over env vars, env vars over this table. Relative paths resolve against this file's folder."""

    model: Optional[str] = path_or_hub(
        default=None, description="CLIP model (hub id or local folder) for retrieval embeddings and the CLIP scores"
                                  " of edits; left out: CLIP scores are skipped",
                                  examples=["openai/clip-vit-base-patch16"],
        json_schema_extra={"env": "DP_EVAL_MODEL"})
    dataset: Optional[Path] = Field(None, description="Person dataset folder for retrieval (queries: its captions, "
                                                      "gallery: its images)", examples=["data/toy"])
    split: str = Field("test", description="Dataset split evaluated by `dp eval retrieval`: train, val or test")
    queries: Optional[Path] = Field(None, description="Query (text) embedding file (.safetensors, .npz, or .npy + "
                                                      "NAME.ids.txt), instead of a model",
                                                      examples=["runs/irra/queries.npy"])
    gallery: Optional[Path] = Field(None, description="Gallery (image) embedding file, with queries",
                                          examples=["runs/irra/gallery.npy"])
    ks: list[int] = Field([1, 5, 10], description="Ranks k reported as Rank-k")
    chunk: Optional[int] = Field(None, description="Queries per similarity chunk (memory bound); left out: about 8M"
                                                   " similarity entries per chunk", examples=[512])
    cmc_max_rank: int = Field(50, description="Last rank of the CMC curve (JSON and figure)")
    batch_size: int = Field(64, description="Images or captions per CLIP forward pass")
    image_size: list[int] = Field([384, 128], description="CLIP input size [height, width] for retrieval (IRRA: "
                                                          "384x128; position embeddings are interpolated)")
    mean: list[float] = Field(list(CLIP_MEAN), description="Per-channel normalisation mean (RGB, 0..1; CLIP's "
                                                           "values)")
    std: list[float] = Field(list(CLIP_STD), description="Per-channel normalisation std (RGB, 0..1; CLIP's values)")
    max_text_length: int = Field(77, description="Tokens per caption (longer captions are truncated)")
    device: str = Field("auto", description="Torch device: auto (cuda when available), cpu, cuda, cuda:1 ...",
                        json_schema_extra={"env": "DP_EVAL_DEVICE"})
    dilate: int = Field(3, description="Pixels the edit mask grows by before PSNR/SSIM are measured outside it")
    ssim_sigma: float = Field(1.5, description="Gaussian window sigma of SSIM (an 11-pixel window at 1.5)")
    figure: Optional[Path] = Field(None, description="Write the CMC curve of `dp eval retrieval` to this PNG",
                                         examples=["cmc.png"])

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError("ks must be a non-empty list of positive integers, e.g. [1, 5, 10]")
        return sorted(set(v))

    @field_validator("image_size")
    @classmethod
    def _size(cls, v: list[int]) -> list[int]:
        v = list(v) * 2 if len(v) == 1 else v  # '224' (a flag) or [224]: square, as `dp baseline` reads it
        if len(v) != 2 or any(s < 8 for s in v):
            raise ValueError("image_size must be height and width, each at least 8: "
                             "[384, 128] in TOML, 384x128 as a flag")
        return v

    @field_validator("mean", "std")
    @classmethod
    def _three(cls, v: list[float]) -> list[float]:
        if len(v) != 3:
            raise ValueError("give three values (R, G, B)")
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: list[float]) -> list[float]:
        if any(s <= 0 for s in v):
            raise ValueError("std values must be positive")
        return v

    @field_validator("batch_size", "cmc_max_rank", "max_text_length")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v

    @field_validator("chunk")
    @classmethod
    def _chunk(cls, v: Optional[int]) -> Optional[int]:
        if v is not None and v < 1:
            raise ValueError("chunk must be at least 1 (or left out)")
        return v

    @field_validator("dilate")
    @classmethod
    def _dilate(cls, v: int) -> int:
        if v < 0:
            raise ValueError("dilate must be 0 or more pixels")
        return v

    @field_validator("ssim_sigma")
    @classmethod
    def _sigma(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("ssim_sigma must be positive")
        return v

    @field_validator("split")
    @classmethod
    def _split(cls, v: str) -> str:
        if v not in ("train", "val", "test"):
            raise ValueError("split must be train, val or test")
        return v

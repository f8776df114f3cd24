"""The `[segment]` table: which parsing model, how to batch it, how to clean and import maps."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from dp_cli.config import Section, one_of, path_or_hub

DEFAULT_MODEL = "mattmdjaga/segformer_b2_clothes"
LABEL_SET_CHOICES = ("auto", "atr", "lip", "custom")
IMAGE_MODES = ("link", "copy")


class SegmentConfig(Section):
    """`dp segment` (run a parsing model) and `dp segment import` (convert maps you have).
    Flags win over env vars, env vars over this table. Relative paths resolve against this file's folder."""

    model: str = path_or_hub(
        default=DEFAULT_MODEL, description="Semantic-segmentation model: hub id or local folder "
                                           "(AutoModelForSemanticSegmentation + image processor config); "
                                           "HF_HUB_OFFLINE=1 uses the cache only",
        json_schema_extra={"env": "DP_SEGMENT_MODEL"})
    batch_size: int = Field(8, ge=1, description="Images per forward pass")
    device: str = Field("auto", description="Device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
                        json_schema_extra={"env": "DP_SEGMENT_DEVICE"})
    label_set: str = Field("auto", description="Label set of the model or the imported maps: auto (model: its "
                                               "id2label names; import: the dataset's header, or atr with --maps), "
                                               "atr, lip, or custom (the labels table below)")
    labels: dict[int, str] = Field({}, description="For label_set = \"custom\": source label id -> our label name (an"
                                                   " ATR or LIP name), for example",
                                                   examples=[{0: "background", 1: "hair", 2: "upper-clothes",
                                                              3: "pants", 4: "left-shoe"}])
    cleanup: bool = Field(False, description="Clean maps: drop tiny islands and fill small enclosed background "
                                             "holes")
    min_island_pixels: int = Field(32, ge=0, description="Clean-up: components smaller than this many pixels of a "
                                                         "384x128 map (scaled with each map's area: 21 at 256x128, "
                                                         "1.3 at 64x32) take their most common neighbour label; a "
                                                         "label's largest region bordering two or more labels is "
                                                         "kept")
    max_hole_pixels: int = Field(256, ge=0, description="Clean-up: background regions up to this many pixels, "
                                                        "enclosed by one label, are filled with it")
    images: str = Field("link", description="How source images enter the output dataset: link (hard link; a copy "
                                            "where linking fails) or copy")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
            raise ValueError("unknown device; use auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("label_set")
    @classmethod
    def _label_set(cls, value: str) -> str:
        return one_of(value, LABEL_SET_CHOICES, "label set")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[int, str]) -> dict[int, str]:
        from dp_cli.segment.labels import atr_id

        bad = [f"{k}={v!r}" for k, v in value.items() if atr_id(v) is None or not 0 <= k < 256]
        if bad:
            raise ValueError(f"unknown label name(s) or id(s) {', '.join(bad)}; names are ATR or LIP labels "
                             "(hair, upper-clothes, pants, ...), ids 0..255")
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, value: str) -> str:
        return one_of(value, IMAGE_MODES)

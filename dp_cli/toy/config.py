"""The `[toy]` table: how `dp toy` builds a toy world."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, field_validator

from dp_cli.config import Section


class ToyConfig(Section):
    """`dp toy`: the procedural toy world (persons with exact ATR parsing maps, captions, a garment catalog)."""

    out: Optional[Path] = Field(None, description="Folder to write (new or empty; `dp toy --overwrite` replaces an "
                                                  "earlier toy world)", examples=["toy"],
                                json_schema_extra={"env": "DP_TOY_OUT"})
    persons: int = Field(20, ge=1, le=1_000_000, description="Number of persons (identities)")
    seed: int = Field(0, ge=0, description="Random seed: the same seed gives byte-identical files")
    height: int = Field(256, ge=32, le=4096, description="Image height in pixels (at least 32)")
    width: int = Field(128, ge=16, le=4096, description="Image width in pixels (at least 16); also the side of the "
                                                        "square catalog images")
    images_per_person: int = Field(3, ge=1, le=100, description="Images per person: pose, framing and background "
                                                                "vary, clothes stay")
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of persons in the test split (the split is"
                                                                  " by person)")
    catalog_per_type: int = Field(8, ge=0, le=10_000,
                                  description="Catalog product images per type (hair, uppercloth, bottomcloth, "
                                              "shoes, bag, hat); 0 = none")
    name: str = Field("toy", min_length=1, description="Dataset name written to dataset.json")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("name must be one line")
        return value

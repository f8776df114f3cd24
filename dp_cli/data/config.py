"""The `[data]` table: the dataset every command uses unless told otherwise."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from dp_cli.config import Section, one_of


class DataConfig(Section):
    """Which dataset to read, in which format, with which parsing label set."""

    dataset: Path | None = Field(
        None, description="Dataset folder or annotation file (native, CUHK-PEDES, ICFG-PEDES or RSTPReid).",
        json_schema_extra={"env": "DP_DATASET"})
    format: str = Field("auto", description="Dataset format: auto (detect from the file), native, cuhk-pedes, "
                                            "icfg-pedes or rstpreid.")
    label_set: str = Field("atr", description="Parsing label set of the dataset's parsing maps: atr or lip.")
    catalog: Path | None = Field(None, description="Attribute catalog folder (holding catalog.jsonl) or file.")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from dp_cli.data.formats import FORMAT_NAMES

        return one_of(value, FORMAT_NAMES, "format", also="auto")

    @field_validator("label_set")
    @classmethod
    def _known_label_set(cls, value: str) -> str:
        from dp_cli.data.attributes import LABEL_SETS

        return one_of(value, LABEL_SETS, "label set")

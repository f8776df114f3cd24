"""The `[data]` table: the dataset every command uses unless told otherwise."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from dp_cli.config import Section, one_of


class DataConfig(Section):
    """The dataset every command uses unless given --dataset (env DP_DATASET).
    Relative paths resolve against this file's folder."""

    dataset: Path | None = Field(
        None, description="Dataset folder or annotation file: native (annotations.jsonl), CUHK-PEDES "
                          "(reid_raw.json), ICFG-PEDES (ICFG-PEDES.json) or RSTPReid (data_captions.json)",
                          examples=["data/toy"],
        json_schema_extra={"env": "DP_DATASET"})
    format: str = Field("auto", description="Dataset format: auto (detected from the file), native, cuhk-pedes, "
                                            "icfg-pedes or rstpreid")
    label_set: str = Field("atr", description="Parsing label set of the dataset's parsing maps: atr or lip (native "
                                              "datasets say it in dataset.json)")
    catalog: Path | None = Field(None, description="Attribute catalog folder (holding catalog.jsonl) or file, for "
                                                   "`dp edit`", examples=["data/toy"])

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

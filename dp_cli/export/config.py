"""The `[export]` table: which format to write, where, and which generated records to add."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from dp_cli.config import Section, one_of


class ExportConfig(Section):
    """Settings of `dp export` (the dataset itself comes from `[data]` or --dataset)."""

    format: str = Field("cuhk-pedes", description="Format to write: cuhk-pedes, icfg-pedes, rstpreid, tbps-clip or native.")
    out: Path | None = Field(None, description="Output folder, new or empty; --overwrite replaces only an "
                            "earlier export (a folder holding export.json). IRRA opens <root_dir>/CUHK-PEDES, "
                            "ICFG-PEDES or RSTPReid, so name it after the format.")
    edits: Path | None = Field(None, description="Edit manifest (edits.jsonl from `dp edit`) whose images "
                                                 "join the train split as new identities.")
    annotations: Path | None = Field(None, description="Annotations (from `dp annotate`) joined to the edits "
                                                       "by id; default: annotations.jsonl beside the edits.")
    link: bool = Field(False, description="Hard-link images (symlink across devices) instead of copying them.")
    use_base_description: bool = Field(False, description="Give edits without an annotation their "
                                                          "base_description instead of skipping them.")
    include_failed_edits: bool = Field(False, description="Also export edits that failed `dp edit`'s verifier "
                                                    "(status failed in edits.jsonl); default: leave them out.")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from dp_cli.data.formats import FORMAT_NAMES

        return one_of(value, FORMAT_NAMES, "format")

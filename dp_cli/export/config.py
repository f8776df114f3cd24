"""The `[export]` table: which format to write, where, and which generated records to add."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from dp_cli.config import Section, one_of


class ExportConfig(Section):
    """`dp export` (the dataset comes from [data] or --dataset; each key is also a flag).
    Relative paths resolve against this file's folder."""

    format: str = Field("cuhk-pedes", description="Format to write: cuhk-pedes, icfg-pedes, rstpreid, tbps-clip or "
                                                  "native")
    out: Path | None = Field(None, description="Output folder, new or empty; `dp export --overwrite` replaces only "
                                               "an earlier export (it holds export.json). IRRA opens "
                                               "<root_dir>/CUHK-PEDES (ICFG-PEDES, RSTPReid): name the folder after"
                                               " the format, then train with --root_dir exported --dataset_name "
                                               "CUHK-PEDES (the export summary prints both)",
                                               examples=["exported/CUHK-PEDES"])
    edits: Path | None = Field(None, description="Edit manifest from `dp edit`: its images join the train split as "
                                                 "new identities", examples=["edits/edits.jsonl"])
    annotations: Path | None = Field(None, description="Annotations from `dp annotate`, joined to the edits by id "
                                                       "(default: annotations.jsonl beside the edits)",
                                                       examples=["edits/annotations.jsonl"])
    link: bool = Field(False, description="Hard-link images (symlink across devices) instead of copying them (flag:"
                                          " --link/--copy)")
    use_base_description: bool = Field(False, description="Edits without an annotation get their base_description "
                                                          "instead of being skipped")
    include_failed_edits: bool = Field(False, description="Also export edits that failed `dp edit`'s verifier "
                                                          "(\"status\": \"failed\"); by default they are left out and "
                                                          "counted, since their caption names a garment the image "
                                                          "lacks")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from dp_cli.data.formats import FORMAT_NAMES

        return one_of(value, FORMAT_NAMES, "format")

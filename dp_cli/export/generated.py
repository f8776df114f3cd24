"""Generated records: `dp edit`'s edits.jsonl joined by id with `dp annotate`'s annotations.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dp_cli.data.dataset import PersonDataset, PersonRecord, resolve_inside, safe_relpath
from dp_cli.data.handoff import EditRow, read_descriptions, read_edit_rows
from dp_cli.errors import DataError

GENERATED_DIR = "generated"
NEEDED = ("id", "image", "source_id", "variant")  # fields of an edit row an export reads


@dataclass
class GeneratedRecords:
    """Train records made from edits, each with the new identity (`variant`) it belongs to."""

    records: list[PersonRecord] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # one per record
    sources: dict[str, Path] = field(default_factory=dict)  # record id -> edited image on disk
    skipped: int = 0  # edits without an annotation
    failed: int = 0  # edits left out because they failed verification (status "failed")


def load_generated(edits: Path, dataset: PersonDataset, annotations: Path | None = None,
                   use_base_description: bool = False, include_failed_edits: bool = False) -> GeneratedRecords:
    """Join edits and annotations into train records; edits must come from `dataset`.

    Edits that failed `dp edit`'s verifier (`"status": "failed"`) are left out and counted, unless
    `include_failed_edits`: their caption would name a garment the image lacks."""
    if not edits.is_file():  # before the annotations, which default to a file beside the edits
        raise DataError(f"{edits}: edit manifest not found", hint="pass --edits the edits.jsonl written by `dp edit`")
    annotations = annotations or edits.parent / "annotations.jsonl"
    if annotations.exists():
        descriptions = read_descriptions(annotations)
    elif use_base_description:
        descriptions = {}
    else:
        raise DataError(f"{annotations}: annotations not found",
                        hint="run `dp annotate`, pass --annotations, or use --use-base-description")
    known = dataset.by_id()
    out = GeneratedRecords()
    seen: set[str] = set()
    for row in read_edit_rows(edits, NEEDED):
        rec, source = _edit_record(row, edits.parent, known, dataset)
        if rec.id in seen:
            raise DataError(f"{row.where}: duplicate edit id {rec.id!r}", hint="ids must be unique")
        seen.add(rec.id)
        if row.failed and not include_failed_edits:
            out.failed += 1
            continue
        _check_train_source(row, known, dataset)
        caption = descriptions.get(rec.id) or ((row.base_description or "").strip() if use_base_description else "")
        if not caption:
            out.skipped += 1
            continue
        rec.captions = [caption]
        out.records.append(rec)
        out.variants.append(row.variant)
        out.sources[rec.id] = source
    return out


def _check_train_source(row: EditRow, known: dict[str, PersonRecord], dataset: PersonDataset) -> None:
    """Generated records join the training set: an edit of a val/test person would leak that person into it."""
    split = known[row.source_id].split
    if split != "train":
        raise DataError(f"{row.where}: edit {row.id!r} was made from {row.source_id!r}, a {split} record of "
                        f"{dataset.root}; edits are exported as training data, so it would put a {split} person "
                        "into training", hint="export edits of train persons only (dp edit --split train)")


def _edit_record(row: EditRow, folder: Path, known: dict[str, PersonRecord],
                 dataset: PersonDataset) -> tuple[PersonRecord, Path]:
    where = row.where
    if row.source_id not in known:
        made_from = row.source_dataset or "another dataset"
        raise DataError(f"{where}: source_id {row.source_id!r} is not in dataset {dataset.root} "
                        f"(the edit was made from {made_from})", hint="export the dataset the edits were made from")
    if row.id in known:
        raise DataError(f"{where}: edit id {row.id!r} is already a record id of the dataset")
    rel = safe_relpath(row.image, f"{where} (id {row.id!r})")
    source = resolve_inside(folder, rel, f"{where} (id {row.id!r})")  # no link out of the edits folder
    if not source.is_file():
        raise DataError(f"{where}: edited image {source} not found", hint="rerun `dp edit` or fix the manifest")
    extra = {"generated": {"source_id": row.source_id, "variant": row.variant}}
    rec = PersonRecord(id=row.id, image=f"{GENERATED_DIR}/{rel}", person_id=-1, split="train", captions=[],
                       extra=extra)
    return rec, source

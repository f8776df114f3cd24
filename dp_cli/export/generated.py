"""Generated records: `dp edit`'s edits.jsonl joined by id with `dp annotate`'s annotations.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dp_cli.data.dataset import PersonDataset, PersonRecord, resolve_inside, safe_relpath
from dp_cli.errors import DataError
from dp_cli.fsutil import read_jsonl

GENERATED_DIR = "generated"
EDIT_FIELDS = ("id", "image", "source_id", "variant")


@dataclass
class GeneratedRecords:
    """Train records made from edits, each with the new identity (`variant`) it belongs to."""

    records: list[PersonRecord] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # one per record
    sources: dict[str, Path] = field(default_factory=dict)  # record id -> edited image on disk
    skipped: int = 0  # edits without an annotation
    failed: int = 0  # edits left out because they failed verification (status "failed")


def load_annotations(path: Path) -> dict[str, str]:
    """Descriptions by record id; errors name the line."""
    out: dict[str, str] = {}
    for lineno, row in read_jsonl(path):
        rid, desc = row.get("id"), row.get("description")
        if rid is None or desc is None:
            raise DataError(f"{path}:{lineno}: missing field 'id' or 'description'",
                            hint="annotations come from `dp annotate`")
        if not isinstance(desc, str) or not desc.strip():
            raise DataError(f"{path}:{lineno}: empty description for id {rid!r}", hint="annotate that edit again")
        out[str(rid)] = desc.strip()
    return out


def load_generated(edits: Path, dataset: PersonDataset, annotations: Path | None = None,
                   use_base_description: bool = False, include_failed_edits: bool = False) -> GeneratedRecords:
    """Join edits and annotations into train records; edits must come from `dataset`.

    Edits that failed `dp edit`'s verifier (`"status": "failed"`) are left out and counted, unless
    `include_failed_edits`: their caption would name a garment the image lacks."""
    if not edits.is_file():  # before the annotations, which default to a file beside the edits
        raise DataError(f"{edits}: edit manifest not found", hint="pass --edits the edits.jsonl written by `dp edit`")
    annotations = annotations or edits.parent / "annotations.jsonl"
    if annotations.exists():
        descriptions = load_annotations(annotations)
    elif use_base_description:
        descriptions = {}
    else:
        raise DataError(f"{annotations}: annotations not found",
                        hint="run `dp annotate`, pass --annotations, or use --use-base-description")
    known = dataset.by_id()
    out = GeneratedRecords()
    seen: set[str] = set()
    for lineno, row in read_jsonl(edits):
        rec, variant, source = _edit_record(row, f"{edits}:{lineno}", edits.parent, known, dataset)
        if rec.id in seen:
            raise DataError(f"{edits}:{lineno}: duplicate edit id {rec.id!r}", hint="ids must be unique")
        seen.add(rec.id)
        if row.get("status") == "failed" and not include_failed_edits:
            out.failed += 1
            continue
        caption = descriptions.get(rec.id) or (str(row.get("base_description") or "").strip()
                                               if use_base_description else "")
        if not caption:
            out.skipped += 1
            continue
        rec.captions = [caption]
        out.records.append(rec)
        out.variants.append(variant)
        out.sources[rec.id] = source
    return out


def _edit_record(row: dict, where: str, folder: Path, known: dict[str, PersonRecord],
                 dataset: PersonDataset) -> tuple[PersonRecord, str, Path]:
    missing = [k for k in EDIT_FIELDS if not row.get(k)]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}", hint="edits.jsonl comes from `dp edit`")
    rid, source_id = str(row["id"]), str(row["source_id"])
    if source_id not in known:
        made_from = row.get("source_dataset") or "another dataset"
        raise DataError(f"{where}: source_id {source_id!r} is not in dataset {dataset.root} "
                        f"(the edit was made from {made_from})", hint="export the dataset the edits were made from")
    if rid in known:
        raise DataError(f"{where}: edit id {rid!r} is already a record id of the dataset")
    rel = safe_relpath(str(row["image"]), f"{where} (id {rid!r})")
    source = resolve_inside(folder, rel, f"{where} (id {rid!r})")  # no link out of the edits folder
    if not source.is_file():
        raise DataError(f"{where}: edited image {source} not found", hint="rerun `dp edit` or fix the manifest")
    extra = {"generated": {"source_id": source_id, "variant": str(row["variant"])}}
    rec = PersonRecord(id=rid, image=f"{GENERATED_DIR}/{rel}", person_id=-1, split="train", captions=[],
                       extra=extra)
    return rec, str(row["variant"]), source

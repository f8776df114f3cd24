"""Plan the work of a dataset edit: catalog, variants (person x references) and one job per image."""

from __future__ import annotations

import random
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from PIL import Image

from dp_cli.data.dataset import PersonDataset, PersonRecord, resolve_inside, safe_relpath
from dp_cli.data.images import load_parsing, load_rgb
from dp_cli.errors import DataError
from dp_cli.fsutil import read_jsonl

CATALOG_FILE = "catalog.jsonl"


@dataclass
class CatalogItem:
    """One reference image of the catalog."""

    image: Path  # absolute
    type: str
    label: str
    color: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    mask: Path | None = None  # absolute: the garment's mask, when the catalog gives one

    def to_reference_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"type": self.type, "label": self.label, "image": str(self.image)}
        if self.mask is not None:
            row["mask"] = str(self.mask)
        if self.color is not None:
            row["color"] = list(self.color)
            for key in ("pattern", "pattern_color"):  # toy truth, for measuring (dp_cli.eval.edits)
                if self.extra.get(key) is not None:
                    row[key] = self.extra[key]
        return row


@dataclass
class EditJob:
    """One image to write: a source record edited with one variant's references."""

    index: int  # position in the plan: the order of the final manifest
    id: str
    record: PersonRecord
    variant: str
    caption: str
    references: list[CatalogItem]
    seed: int

    @property
    def filename(self) -> str:
        return safe_filename(self.id) + ".png"


def safe_filename(name: str) -> str:
    """An id as a file name: anything but letters, digits, '-', '_', '.' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def load_catalog(root: Path) -> list[CatalogItem]:
    """Read `<root>/catalog.jsonl` (or that file itself); DataError naming the line on bad rows."""
    from dp_cli.data.attributes import ATTRIBUTE_TYPES

    path = root / CATALOG_FILE if root.is_dir() else root
    if not path.is_file():
        raise DataError(f"{root}: no {CATALOG_FILE} in this catalog folder" if root.is_dir() else
                        f"{path}: catalog not found", hint=f"pass --catalog a folder holding {CATALOG_FILE} "
                                                           "(`dp toy` writes one in <world>/catalog)")
    folder = path.parent
    items = []
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        missing = [k for k in ("image", "type", "label") if not obj.get(k)]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        wrong = [k for k in ("image", "type", "label", "mask") if k in obj and obj[k] is not None
                 and not isinstance(obj[k], str)]
        if wrong:
            raise DataError(f"{where}: field(s) {', '.join(wrong)} must be text (got {obj[wrong[0]]!r})",
                            hint='e.g. {"image": "images/skirt.png", "type": "bottomcloth", "label": "white skirt"}')
        if obj["type"] not in ATTRIBUTE_TYPES:
            raise DataError(f"{where}: unknown attribute type {obj['type']!r}",
                            hint=f"use one of {', '.join(ATTRIBUTE_TYPES)}")
        rel = safe_relpath(obj["image"], where)
        mask = (resolve_inside(folder, safe_relpath(obj["mask"], f"{where} mask"), f"{where} mask")
                if obj.get("mask") else None)
        extra = {k: v for k, v in obj.items() if k not in ("image", "type", "label", "color", "mask")}
        items.append(CatalogItem(resolve_inside(folder, rel, where), obj["type"], str(obj["label"]), obj.get("color"),
                                 extra, mask))
    if not items:
        raise DataError(f"{path}: catalog is empty")
    return items


def job_seed(seed: int, job_id: str) -> int:
    """A stable per-image seed (same plan, same seed, whatever the sharding)."""
    return (seed * 1_000_003 + zlib.crc32(job_id.encode("utf-8"))) % (2**31)


def plan_jobs(dataset: PersonDataset, catalog: list[CatalogItem], cfg,
              types_of: Callable[[list[PersonRecord]], set[str]] | None = None) -> list[EditJob]:
    """Variants per person (seeded), each applied to all (or the first N) of that person's images.

    `types_of(records)` says which types a person shows (see `present_types`); a variant replaces only
    those, and a person showing none of `cfg.types` is left out. None: every type is assumed present.
    """
    by_type: dict[str, list[CatalogItem]] = defaultdict(list)
    for item in catalog:
        by_type[item.type].append(item)
    missing = [t for t in cfg.types if t not in by_type]
    if missing:
        raise DataError(f"catalog has no reference of type(s) {missing} (it has {sorted(by_type)})",
                        hint="add such images to catalog.jsonl or drop them from [edit] types")
    persons: dict[int, list[PersonRecord]] = defaultdict(list)
    for rec in dataset.split(cfg.split):
        persons[rec.person_id].append(rec)
    if not persons:
        raise DataError(f"{dataset.root}: no images in split {cfg.split!r}", hint="choose another [edit] split")
    chosen = sorted(persons)
    if cfg.persons is not None and cfg.persons < len(chosen):
        chosen = sorted(random.Random(cfg.seed).sample(chosen, cfg.persons))
    jobs: list[EditJob] = []
    for pid in chosen:
        rng = random.Random(f"{cfg.seed}:{pid}")  # per person: the plan of one person never depends on others
        records = sorted(persons[pid], key=lambda r: r.id)[:cfg.max_images_per_person]
        shown = [t for t in cfg.types if types_of is None or t in types_of(records)]
        for k in range(cfg.variants_per_person if shown else 0):
            types = sorted(rng.sample(shown, min(cfg.attributes_per_variant, len(shown))), key=cfg.types.index)
            refs = [_pick(rng, by_type[t], _current_label(records[0], t)) for t in types]
            for rec in records:
                jid = f"{rec.id}__v{k}"
                jobs.append(EditJob(len(jobs), jid, rec, f"{pid}__v{k}", rec.captions[k % len(rec.captions)],
                                    refs, job_seed(cfg.seed, jid)))
    return jobs


def _current_label(record: PersonRecord, type_name: str) -> str | None:
    """The attribute's label when the dataset knows it (the toy world's ground truth)."""
    return (record.extra.get("toy", {}).get("attributes", {}).get(type_name) or {}).get("label")


def _pick(rng: random.Random, items: list[CatalogItem], current: str | None) -> CatalogItem:
    """A catalog item, not the one the person already wears when another exists."""
    others = [i for i in items if i.label != current]
    return rng.choice(others or items)


def present_types(dataset: PersonDataset, records: list[PersonRecord], types: list[str]) -> set[str]:
    """The attribute types with pixels in any of these records' parsing maps."""
    from dp_cli.data.attributes import label_ids

    found: set[str] = set()
    for rec in records:
        if rec.parsing is None:
            raise DataError(f"{dataset.root}: record {rec.id!r}: no parsing map", hint="run `dp segment` to add them")
        labels = np.unique(load_parsing(dataset.parsing_path(rec), f"record {rec.id!r} parsing map"))
        found |= {t for t in types if np.isin(label_ids(t, dataset.label_set), labels).any()}
        if found >= set(types):
            break
    return found


def check_jobs(dataset: PersonDataset, jobs: list[EditJob]) -> None:
    """Fail before writing anything: parsing maps present and of the image's size, references readable."""
    seen: set[str] = set()
    for job in jobs:
        rec = job.record
        if rec.id in seen:
            continue
        seen.add(rec.id)
        where = f"{dataset.root}: record {rec.id!r}"
        if rec.parsing is None:
            raise DataError(f"{where}: no parsing map", hint="run `dp segment` to add parsing maps")
        size = _image_size(dataset.image_path(rec), where)
        psize = _image_size(dataset.parsing_path(rec), f"{where} parsing")
        if size != psize:
            raise DataError(f"{where}: parsing map {dataset.parsing_path(rec)} is {psize[0]}x{psize[1]} but the "
                            f"image is {size[0]}x{size[1]}", hint="parsing maps must have the image's size")
        check_labels(load_parsing(dataset.parsing_path(rec), f"{where} parsing map"), dataset.label_set,
                     f"{where} parsing map {dataset.parsing_path(rec)}")
    for path in sorted({str(r.image) for j in jobs for r in j.references}):
        load_rgb(Path(path), "reference image")
    for path in sorted({str(r.mask) for j in jobs for r in j.references if r.mask is not None}):
        _image_size(Path(path), "reference mask")


def check_labels(labels: np.ndarray, label_set: str, where: str) -> None:
    """A label map may only hold ids of its label set (255, an 'ignore' id of some parsers, is not one)."""
    from dp_cli.data.attributes import LABEL_SETS

    n = len(LABEL_SETS[label_set])
    bad = np.unique(labels[(labels < 0) | (labels >= n)])
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:5])
        raise DataError(f"{where}: label id(s) {shown} outside the {label_set} label set (0..{n - 1})",
                        hint="re-run `dp segment`, or map those pixels to 0 (background) / pick the right --label-set")


def _image_size(path: Path, where: str) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError(f"{where}: image {path} not found") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot read image {path} ({exc})") from None

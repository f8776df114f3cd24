"""Generate a toy world: persons with several images, exact parsing maps, captions, splits, a catalog.

Everything follows from the seed: the same arguments give byte-identical files. The whole folder is
built under a temporary name beside the target and renamed into place at the end, so an interrupted
run never leaves a half-written dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dp_cli.data.attributes import ATTRIBUTE_TYPES
from dp_cli.data.dataset import PersonDataset
from dp_cli.data.formats.native import NATIVE_ANNOTATIONS, NATIVE_HEADER, load_native, native_header, read_header
from dp_cli.errors import ConfigError, DataError
from dp_cli.fsutil import staging_dir, write_json_atomic, write_jsonl_atomic
from dp_cli.toy.captions import make_captions
from dp_cli.toy.catalog import CATALOG_FILE, build_catalog, save_png
from dp_cli.toy.render import LABEL_ID, render_person
from dp_cli.toy.spec import Attribute, PersonSpec, View, sample_person, sample_view

__all__ = ["Attribute", "PersonSpec", "View", "PersonPlan", "generate_world", "person_plan", "render_person",
           "visible_types", "plan_for_record", "CATALOG_DIR"]

CATALOG_DIR = "catalog"


@dataclass(frozen=True)
class PersonPlan:
    """A person and the views of their images, all derived from (seed, person_id)."""

    spec: PersonSpec
    views: tuple[View, ...]
    caption_counts: tuple[int, ...]
    caption_seed: int


def person_plan(seed: int, person_id: int, images: int) -> PersonPlan:
    """The person `person_id` of the world with this seed, and their `images` views."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, person_id]))
    spec = sample_person(rng, person_id)
    views = tuple(sample_view(rng) for _ in range(images))
    counts = tuple(1 + int(rng.random() < 0.5) for _ in range(images))
    return PersonPlan(spec, views, counts, int(rng.integers(2**31)))


def plan_for_record(dataset: PersonDataset, record) -> tuple[PersonSpec, View]:
    """The spec and view that drew a record of a toy world (from dataset.json's generator settings)."""
    gen = read_header(dataset.root).get("generator")
    if not gen or "seed" not in gen:
        raise DataError(f"{dataset.root / NATIVE_HEADER}: no toy generator settings", hint="was it made by `dp toy`?")
    try:
        index = int(record.id.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        raise DataError(f"{dataset.root}: record {record.id!r} is not a toy record id (p<person>_<k>)") from None
    plan = person_plan(int(gen["seed"]), record.person_id, int(gen["images_per_person"]))
    if index >= len(plan.views):
        raise DataError(f"{dataset.root}: record {record.id!r} has image index {index} beyond images_per_person")
    return plan.spec, plan.views[index]


def visible_types(spec: PersonSpec, labels: np.ndarray, min_pixels: int = 1) -> set[str]:
    """Attribute types of the person with at least `min_pixels` pixels of their labels in the map."""
    out = set()
    for name in spec.attributes:
        ids = [LABEL_ID[n] for n in ATTRIBUTE_TYPES[name].labels if n in LABEL_ID]
        if int(np.isin(labels, ids).sum()) >= min_pixels:
            out.add(name)
    return out


def check_arguments(persons: int, height: int, width: int, images_per_person: int, test_fraction: float,
                    catalog_per_type: int, seed: int) -> None:
    """Every bad argument reported together, each with its value."""
    problems = []
    if persons < 1:
        problems.append(f"persons must be at least 1 (got {persons})")
    if height < 32 or width < 16:
        problems.append(f"image size must be at least 32x16 (height x width), got {height}x{width}")
    if images_per_person < 1:
        problems.append(f"images_per_person must be at least 1 (got {images_per_person})")
    if not 0.0 <= test_fraction < 1.0:
        problems.append(f"test_fraction must be in [0, 1) (got {test_fraction})")
    if catalog_per_type < 0:
        problems.append(f"catalog_per_type must be 0 or more (got {catalog_per_type})")
    if seed < 0:
        problems.append(f"seed must be 0 or more (got {seed})")
    if problems:
        raise ConfigError("invalid toy world settings", problems)


def split_persons(persons: int, test_fraction: float, seed: int) -> set[int]:
    """The person ids of the test split (at least one when the fraction is positive and persons > 1)."""
    n_test = int(round(persons * test_fraction))
    if test_fraction > 0 and persons > 1:
        n_test = max(1, n_test)
    n_test = min(n_test, persons - 1)
    order = np.random.default_rng(np.random.SeedSequence([seed, 2])).permutation(persons)
    return {int(p) for p in order[:n_test]}


def person_records(plan: PersonPlan, split: str, root: Path, height: int, width: int) -> list[dict[str, Any]]:
    """Render, save and describe every image of one person; returns their annotation rows."""
    spec, rows = plan.spec, []
    rng = np.random.default_rng(np.random.SeedSequence([plan.caption_seed, 3]))
    min_pixels = max(1, int(round(height * width * 0.0008)))
    for k, (view, count) in enumerate(zip(plan.views, plan.caption_counts)):
        rid = f"p{spec.person_id:05d}_{k}"
        image, labels = render_person(spec, view, height, width)
        save_png(image, root / "images" / f"{rid}.png")
        save_png(_label_image(labels), root / "parsing" / f"{rid}.png")
        visible = visible_types(spec, labels, min_pixels)
        truth = {"attributes": {t: a.truth() for t, a in spec.attributes.items() if t in visible},
                 "gender": spec.gender, "skin": list(spec.skin), "pose": view.truth(),
                 "background": view.background["kind"]}
        rows.append({"id": rid, "image": f"images/{rid}.png", "person_id": spec.person_id, "split": split,
                     "captions": make_captions(spec, visible, rng, count), "parsing": f"parsing/{rid}.png",
                     "extra": {"toy": truth}})
    return rows


def _label_image(labels: np.ndarray):
    from PIL import Image

    return Image.fromarray(labels, "L")


def generate_world(out_dir: Path, persons: int = 20, seed: int = 0, height: int = 256, width: int = 128,
                   images_per_person: int = 3, test_fraction: float = 0.2, catalog_per_type: int = 8,
                   name: str = "toy", overwrite: bool = False,
                   progress: Callable[[int], None] | None = None) -> PersonDataset:
    """Write a toy world (native dataset + catalog/) to out_dir and return the loaded dataset."""
    # 1. Check inputs
    check_arguments(persons, height, width, images_per_person, test_fraction, catalog_per_type, seed)
    out_dir = Path(out_dir)
    check_target(out_dir, overwrite)
    where = out_dir.resolve()
    where.parent.mkdir(parents=True, exist_ok=True)
    stage = staging_dir(where.parent, prefix=f".{where.name}.", suffix=".tmp")
    try:
        # 2. Persons, their images, parsing maps and captions
        test_ids = split_persons(persons, test_fraction, seed)
        rows: list[dict[str, Any]] = []
        for pid in range(persons):
            plan = person_plan(seed, pid, images_per_person)
            rows += person_records(plan, "test" if pid in test_ids else "train", stage, height, width)
            if progress:
                progress(1)
        # 3. The garment catalog
        entries = build_catalog(stage / CATALOG_DIR, catalog_per_type, seed, width) if catalog_per_type else []
        write_jsonl_atomic(stage / CATALOG_DIR / CATALOG_FILE, entries)
        # 4. Annotations and header, then the folder into place
        write_jsonl_atomic(stage / NATIVE_ANNOTATIONS, rows)
        write_json_atomic(stage / NATIVE_HEADER, native_header("atr", name, generator={
            "tool": "dp toy", "seed": seed, "persons": persons, "height": height, "width": width,
            "images_per_person": images_per_person, "test_fraction": test_fraction,
            "catalog_per_type": catalog_per_type}))
        default_modes(stage / CATALOG_DIR / CATALOG_FILE, stage / NATIVE_ANNOTATIONS, stage / NATIVE_HEADER, dirs=[])
        replace_dir(stage, where)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return load_native(out_dir)


def default_modes(*files: Path, dirs: list[Path]) -> None:
    """Temporary files and folders are private (0600/0700); a dataset gets the usual umask modes."""
    mask = os.umask(0)
    os.umask(mask)
    for path in files:
        os.chmod(path, 0o666 & ~mask)
    for path in dirs:
        os.chmod(path, 0o777 & ~mask)


def check_target(out_dir: Path, overwrite: bool) -> None:
    """A file is refused; a non-empty folder is refused unless overwrite and it holds an earlier toy world."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a folder", hint="choose another --out")
    if not (out_dir.is_dir() and any(out_dir.iterdir())):
        return
    if not overwrite:
        raise DataError(f"{out_dir}: folder is not empty", hint="choose an empty or new --out, or pass --overwrite")
    if not _is_toy_world(out_dir):
        raise DataError(f"{out_dir}: folder is not empty and holds no toy world (no dataset.json from `dp toy`)",
                        hint="--overwrite only replaces an earlier toy world; choose an empty or new --out")


def _is_toy_world(folder: Path) -> bool:
    try:
        header = json.loads((folder / NATIVE_HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and isinstance(header.get("generator"), dict) \
        and header["generator"].get("tool") == "dp toy"


def replace_dir(stage: Path, target: Path) -> None:
    """Put the finished stage folder's contents at target.

    A new target is one rename. An existing folder (empty, or replaced with overwrite) keeps its own
    inode, so a shell inside it stays valid: its old entries move aside first, the new ones move in
    with annotations.jsonl last (it marks a complete dataset), then the old ones are deleted.
    """
    if not target.exists():
        os.replace(stage, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.resolve().name}.old-", dir=target.resolve().parent))
    for entry in list(target.iterdir()):
        os.replace(entry, old / entry.name)
    names = sorted(p.name for p in stage.iterdir())
    names.sort(key=lambda n: n == NATIVE_ANNOTATIONS)
    for name in names:
        os.replace(stage / name, target / name)
    shutil.rmtree(old, ignore_errors=True)

"""The output folder of `dp segment`: a native dataset with label maps and the source images.

Layout: `<out>/images/<source relative path>` (hard link, or copy), `<out>/parsing/<same path>.png`
(mode "L", ATR ids), `<out>/annotations.jsonl`, `<out>/dataset.json`, `<out>/segment.json` (what made
the maps: model or imported source, settings; a rerun with other settings is refused).
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dp_cli.data.attributes import ATR_LABELS, ATTRIBUTE_TYPES
from dp_cli.data.dataset import PersonDataset
from dp_cli.data.formats.native import NativeFormat
from dp_cli.errors import DataError
from dp_cli.fsutil import atomic_path, save_image_atomic, write_json_atomic
from dp_cli.segment.labels import types_present

PROVENANCE = "segment.json"


HEAVY_CLEANUP = 0.5  # a label that clean-up took more than this share of is worth a warning


@dataclass
class CleanupStats:
    """Per ATR label, over the maps cleaned in a run: its pixels, the pixels clean-up gave to another label,
    and the maps holding it before and after."""

    pixels: np.ndarray = field(default_factory=lambda: np.zeros(len(ATR_LABELS), np.int64))
    removed: np.ndarray = field(default_factory=lambda: np.zeros(len(ATR_LABELS), np.int64))
    maps_before: np.ndarray = field(default_factory=lambda: np.zeros(len(ATR_LABELS), np.int64))
    maps_after: np.ndarray = field(default_factory=lambda: np.zeros(len(ATR_LABELS), np.int64))

    def add(self, before: np.ndarray, after: np.ndarray) -> None:
        n = len(ATR_LABELS)
        count_before = np.bincount(before.ravel(), minlength=n)[:n]
        self.pixels += count_before
        self.removed += np.bincount(before[before != after].ravel(), minlength=n)[:n]
        self.maps_before += count_before > 0
        self.maps_after += np.bincount(after.ravel(), minlength=n)[:n] > 0

    def removed_share(self) -> dict[str, float]:
        """Label name -> share (0..1) of its pixels that clean-up reassigned; labels found, background left out."""
        return {ATR_LABELS[i]: float(self.removed[i] / self.pixels[i])
                for i in range(1, len(ATR_LABELS)) if self.pixels[i]}

    def heavy(self, limit: float = HEAVY_CLEANUP) -> list[tuple[str, float, int, int]]:
        """(label, removed share, maps with it before, after) for each label clean-up took more than `limit` of."""
        return [(name, share, int(self.maps_before[ATR_LABELS.index(name)]),
                 int(self.maps_after[ATR_LABELS.index(name)]))
                for name, share in self.removed_share().items() if share > limit]


@dataclass
class SegmentResult:
    """What a run did: counts, speed, the share of images in which each attribute type was found, and (with
    clean-up) what clean-up removed per label in the maps written now."""

    out: Path
    images: int
    done_now: int
    skipped: int
    missing: int
    seconds: float
    type_share: dict[str, float] = field(default_factory=dict)
    cleanup: CleanupStats | None = None

    @property
    def images_per_s(self) -> float:
        return self.done_now / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Layout:
    """Where each source image (by its relative path) goes in the output, and where its map goes."""

    images: dict[str, str]
    parsing: dict[str, str]


def plan_paths(dataset: PersonDataset) -> Layout:
    """Images under `images/` (a source path already there keeps it), maps under `parsing/` with the
    same sub-path and .png; when two images would collide, every path keeps its full source path."""
    sources = list(dict.fromkeys(r.image for r in dataset.records))
    for strip in (True, False):
        sub = {img: img[len("images/"):] if strip and img.startswith("images/") else img for img in sources}
        parsing = {img: "parsing/" + posixpath.splitext(p)[0] + ".png" for img, p in sub.items()}
        if len(set(sub.values())) == len(sources) and len(set(parsing.values())) == len(sources):
            return Layout({img: f"images/{p}" for img, p in sub.items()}, parsing)
    return Layout({img: f"images/{img}" for img in sources}, {img: f"parsing/{img}.png" for img in sources})


def check_out(dataset: PersonDataset, out: Path, provenance: dict[str, Any], overwrite: bool) -> bool:
    """Refuse an output folder that is (or is inside) the source, holds other files (not made by dp segment),
    or was made with other settings; True when it holds a record of this run's settings (a resume)."""
    where, root = out.resolve(), dataset.root.resolve()
    if where == root:
        raise DataError(f"{out}: the output folder is the source dataset's folder",
                        hint="choose a new --out folder; the source is never modified")
    if root in where.parents:
        raise DataError(f"{out}: the output folder is inside the source dataset's folder {root}",
                        hint="choose a --out folder outside it; the source is never modified")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder", hint="choose a new or empty --out folder")
    prov_path = out / PROVENANCE
    if overwrite:
        return False
    if not prov_path.exists():  # new, empty, or an interrupted run (only maps so far): anything else is foreign
        # the main process may be writing its record right now (other ranks check without a barrier)
        other = sorted(p.name for p in out.iterdir()
                       if p.name != "parsing" and not p.name.startswith(f".{PROVENANCE}.")) if out.is_dir() else []
        if other:
            raise DataError(f"{out}: folder holds other files ({', '.join(other[:3])}) and was not made by "
                            f"dp segment (no {PROVENANCE})",
                            hint="choose a new or empty --out folder, or pass --overwrite")
        return False
    try:
        old = json.loads(prov_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError) as exc:
        raise DataError(f"{prov_path}: unreadable ({exc})", hint="delete it, or pass --overwrite") from None
    if old.get("complete") is False and not any(p.is_file() for p in (out / "parsing").rglob("*")):
        return False  # a run that stopped before its first map: nothing to keep consistent with
    if old.get("complete") is False and old.get("redo"):
        raise DataError(f"{out}: an interrupted --overwrite run left maps of the old and the new settings",
                        hint="pass --overwrite again to redo every map")
    keys = [k for k in provenance if old.get(k) != provenance[k]]
    if keys:
        k = keys[0]
        raise DataError(f"{out}: made with {k} = {old.get(k)!r}, this run has {provenance[k]!r}",
                        hint="use a new --out folder, or pass --overwrite to redo every map")
    return True


def begin_run(out: Path, provenance: dict[str, Any], redo: bool) -> None:
    """Record the settings before the first map is written, so that resuming an interrupted run with other
    settings is refused too (`complete` turns true when the dataset files are written); `redo` marks an
    --overwrite run, whose interrupted state mixes old and new maps."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / PROVENANCE, {**provenance, "complete": False, **({"redo": True} if redo else {})})


def undo_begin(out: Path, previous: bytes | None, created: Path | None) -> None:
    """Take back `begin_run` after a run that wrote no map: the earlier segment.json comes back (none: it goes),
    and the folders this run created (`created`: the topmost, `out` or a parent) go again where empty."""
    prov_path = out / PROVENANCE
    if previous is None:
        prov_path.unlink(missing_ok=True)
    else:
        with atomic_path(prov_path) as tmp:
            tmp.write_bytes(previous)
    if created is None:
        return
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        _rmdir_if_empty(folder)
    folder = out
    while True:
        _rmdir_if_empty(folder)
        if folder == created or folder.parent == folder:
            break
        folder = folder.parent


def first_missing(path: Path) -> Path | None:
    """The topmost folder of `path` (itself or a parent) that does not exist yet; None when `path` exists."""
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def save_map(atr_map: np.ndarray, target: Path) -> None:
    """Write a label map as a single-channel PNG, atomically."""
    from PIL import Image

    save_image_atomic(Image.fromarray(atr_map.astype(np.uint8), mode="L"), target)


def read_map(path: Path) -> np.ndarray:
    """A label map PNG (mode L, P or I) as a 2-D integer array; DataError when it is not one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise DataError(f"{path}: parsing map has mode {im.mode!r}; expected a single-channel map of "
                                "label ids (L or P)", hint="save the maps as grayscale/palette PNGs of ids")
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot read parsing map ({exc})") from None
    return arr.astype(np.int64)


def read_image(path: Path):
    """A source image as RGB; DataError naming the file when unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot read image ({type(exc).__name__}: {exc})",
                        hint="fix or remove that image's record, then rerun to resume") from None


def place_image(src: Path, dst: Path, mode: str) -> None:
    """Hard-link (or copy) a source image into the output; an identical existing file is kept."""
    if dst.exists() and (_same_file(src, dst) or (mode == "copy" and dst.stat().st_size == src.stat().st_size)):
        return
    if not src.is_file():
        raise DataError(f"{src}: image not found", hint="fix the dataset's image paths")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "link":
        tmp = dst.with_name(f".{dst.name}.link.tmp")
        try:
            tmp.unlink(missing_ok=True)
            os.link(src, tmp)
            os.replace(tmp, dst)
            return
        except OSError:
            tmp.unlink(missing_ok=True)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def finish(dataset: PersonDataset, out: Path, layout: Layout, maps: dict[str, str | None], image_mode: str,
           provenance: dict[str, Any]) -> None:
    """Place the images and write annotations.jsonl, dataset.json and segment.json (main process)."""
    records = []
    for rec in dataset.records:
        place_image(dataset.image_path(rec), out / layout.images[rec.image], image_mode)
        records.append(replace(rec, image=layout.images[rec.image], parsing=maps.get(rec.image)))
    NativeFormat().write(PersonDataset(out, records, label_set="atr", name=dataset.name or out.name), out)
    write_json_atomic(out / PROVENANCE, {**provenance, "complete": True})


def type_shares(found: dict[str, list[str]]) -> dict[str, float]:
    """Share of images (0..1) in which each attribute type has at least one pixel."""
    n = max(len(found), 1)
    return {t: sum(t in v for v in found.values()) / n for t in ATTRIBUTE_TYPES}


def found_types(out: Path, parsing: str) -> list[str]:
    """Attribute types present in a written map."""
    return types_present(read_map(out / parsing).astype(np.uint8))

"""`dp segment` domain: run a parsing model over a dataset, or import existing maps, into a native dataset."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dp_cli.data.attributes import LABEL_SETS
from dp_cli.data.dataset import PersonDataset, resolve_inside
from dp_cli.distributed import pick_device, process_state
from dp_cli.errors import DataError, UsageError
from dp_cli.fsutil import remove_stale_temps
from dp_cli.segment.cleanup import REFERENCE_AREA, clean_map, island_threshold
from dp_cli.segment.config import SegmentConfig
from dp_cli.segment.labels import convert_map, lut_for_set, lut_from_names, types_present
from dp_cli.segment.output import (PROVENANCE, CleanupStats, Layout, SegmentResult, begin_run, check_out, finish,
                                   first_missing, found_types, plan_paths, read_image, read_map, save_map, type_shares,
                                   undo_begin)

Progress = Callable[[int], None]


# recorded in segment.json with clean-up: maps cleaned by the old rule (absolute island size, no part kept)
# are not resumed or mixed with these
CLEANUP_RULE = f"islands scaled to {REFERENCE_AREA} px, boundary parts kept"


def _cleanup(atr_map: np.ndarray, cfg: SegmentConfig, stats: CleanupStats | None = None) -> np.ndarray:
    if not cfg.cleanup:
        return atr_map
    cleaned = clean_map(atr_map, island_threshold(cfg.min_island_pixels, atr_map.shape), cfg.max_hole_pixels)
    if stats is not None:
        stats.add(atr_map, cleaned)
    return cleaned


def _settings(cfg: SegmentConfig) -> dict[str, Any]:
    keys = ("cleanup",) + (("min_island_pixels", "max_hole_pixels") if cfg.cleanup else ())
    return {k: getattr(cfg, k) for k in keys} | ({"cleanup_rule": CLEANUP_RULE} if cfg.cleanup else {})


def segment_dataset(dataset: PersonDataset, out: Path, cfg: SegmentConfig, *, overwrite: bool = False,
                    on_progress: Progress | None = None, on_total: Callable[[int, int], None] | None = None
                    ) -> SegmentResult:
    """Segment every image without a map in `out` (resume), then write the native dataset (main process)."""
    # 1. Plan: output paths, provenance check, this process's share; the model loads before anything is written
    layout = plan_paths(dataset)
    paths = layout.parsing
    provenance = {"source": "model", "model": cfg.model, "label_set": cfg.label_set,
                  "labels": {str(k): v for k, v in sorted(cfg.labels.items())}, **_settings(cfg)}
    resuming = check_out(dataset, out, provenance, overwrite)
    state = process_state(cfg.device)
    todo_all = [img for img in paths if overwrite or not (out / paths[img]).exists()]
    todo = todo_all[state.process_index::state.num_processes]
    seg = None
    if todo:  # the model loads before anything is written: a model that cannot load leaves no folder behind
        from dp_cli.segment.model import load_segmenter

        seg = load_segmenter(cfg.model, pick_device(cfg.device, state), cfg.label_set, cfg.labels)
    began = state.is_main_process and not resuming
    created, previous = first_missing(out), _read_bytes(out / PROVENANCE)
    if began:
        begin_run(out, provenance, redo=overwrite)
    if state.is_main_process:
        remove_stale_temps(out, recursive=True)  # temporary maps of a killed run (resumed or not)
    state.wait_for_everyone()  # every process lists the same work before any map is written
    if on_total:
        on_total(len(todo), len(paths) - len(todo_all))
    # 2. Segment the images still to do, batch by batch; each map is written atomically
    found: dict[str, list[str]] = {}
    stats = CleanupStats() if cfg.cleanup else None
    start = time.perf_counter()  # images/s measures segmentation, not model loading
    try:
        _segment_images(seg, todo, dataset, out, paths, cfg, stats, found, on_progress)
        seconds = time.perf_counter() - start
        # 3. Main process: wait for the others, then write the dataset pointing to every map
        state.wait_for_everyone()
        result = SegmentResult(out, len(paths), len(todo_all), len(paths) - len(todo_all), 0, seconds,
                               cleanup=stats)
        if state.is_main_process:
            result = _finish_run(dataset, out, layout, found, cfg, provenance, result)
    except BaseException:
        # a single process that wrote no map leaves the folder as it found it (other processes may be writing)
        if began and state.num_processes == 1 and not found:
            undo_begin(out, previous, created)
        raise
    state.wait_for_everyone()
    return result


def _segment_images(seg, todo: list[str], dataset: PersonDataset, out: Path, paths: dict[str, str],
                    cfg: SegmentConfig, stats: CleanupStats | None, found: dict[str, list[str]],
                    on_progress: Progress | None) -> None:
    """Segment `todo` batch by batch; each map is written atomically and its types put in `found` (filled as
    it goes, so a caller sees what was written when this raises)."""
    for i in range(0, len(todo), cfg.batch_size):
        chunk = todo[i:i + cfg.batch_size]
        images = [read_image(resolve_inside(dataset.root, img, f"image {img!r}")) for img in chunk]
        for img, atr_map in zip(chunk, seg.predict(images)):
            atr_map = _cleanup(atr_map, cfg, stats)
            save_map(atr_map, out / paths[img])
            found[img] = types_present(atr_map)
        if on_progress:
            on_progress(len(chunk))


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _finish_run(dataset: PersonDataset, out: Path, layout: Layout, found: dict[str, list[str]],
                cfg: SegmentConfig, provenance: dict[str, Any], result: SegmentResult) -> SegmentResult:
    paths = layout.parsing
    missing = [img for img in paths if not (out / paths[img]).exists()]
    if missing:
        raise DataError(f"{out / paths[missing[0]]}: map missing after the run ({len(missing)} in all)",
                        hint="a process failed; rerun the same command to resume")
    for img, parsing in paths.items():
        if img not in found:
            found[img] = found_types(out, parsing)
    finish(dataset, out, layout, paths, cfg.images, provenance)
    result.type_share = type_shares(found)
    return result


def import_lut(cfg: SegmentConfig, dataset: PersonDataset, from_dataset: bool) -> tuple[str, np.ndarray]:
    """The label set of imported maps and its lookup table to ATR ids."""
    label_set = cfg.label_set
    if label_set == "auto":
        label_set = dataset.label_set if from_dataset else "atr"
    if label_set == "custom":
        if not cfg.labels:
            raise UsageError("label_set = custom needs a segment.labels table in dp.toml (id = \"label name\")")
        return label_set, lut_from_names(cfg.labels, "segment.labels")
    if label_set not in LABEL_SETS:
        raise UsageError(f"label set {label_set!r} unknown; use atr, lip or custom")
    return label_set, lut_for_set(label_set)


def find_source_map(dataset: PersonDataset, image: str, parsing: str | None, maps: Path | None) -> Path | None:
    """Where the existing map of an image is: the dataset's own `parsing`, or in --maps by path or stem."""
    if maps is None:
        return resolve_inside(dataset.root, parsing, f"image {image!r} parsing map") if parsing else None
    rel = Path(image).with_suffix(".png")
    for cand in (rel.as_posix(), rel.name):
        path = resolve_inside(maps, cand, f"--maps map of image {image!r}")
        if path.is_file():
            return path
    return None


def import_maps(dataset: PersonDataset, out: Path, cfg: SegmentConfig, maps: Path | None = None, *,
                overwrite: bool = False, on_progress: Progress | None = None) -> SegmentResult:
    """Convert existing maps (--maps folder, or the dataset's own) to ATR ids into a native dataset."""
    # 1. Which label set, which output paths
    if maps is not None and not maps.is_dir():
        raise DataError(f"{maps}: maps folder not found", hint="pass the folder holding the parsing PNGs")
    label_set, lut = import_lut(cfg, dataset, maps is None)
    layout = plan_paths(dataset)
    paths = layout.parsing
    provenance = {"source": "import", "maps": str(maps.resolve()) if maps else "dataset",
                  "label_set": label_set, **_settings(cfg)}
    check_out(dataset, out, provenance, overwrite)  # import redoes every map: nothing to record before
    remove_stale_temps(out, recursive=True)  # temporary maps of a killed run
    created = first_missing(out)
    own = {r.image: r.parsing for r in dataset.records}
    # 2. Convert every map found (ids outside the label set are errors naming the file)
    found: dict[str, list[str]] = {}
    written: dict[str, str | None] = {}
    stats = CleanupStats() if cfg.cleanup else None
    start = time.perf_counter()
    try:
        for img, target in paths.items():
            src = find_source_map(dataset, img, own.get(img), maps)
            if src is not None and src.is_file():
                found[img] = _import_one(src, resolve_inside(dataset.root, img, f"image {img!r}"), out / target,
                                        lut, label_set, cfg, stats)
                written[img] = target
            if on_progress:
                on_progress(1)
        seconds = time.perf_counter() - start
        # 3. The native dataset; images without a map keep no `parsing`
        finish(dataset, out, layout, written, cfg.images, provenance)
    except BaseException:  # a failed import into a folder it made leaves no half-written folder behind
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    result = SegmentResult(out, len(paths), len(written), 0, len(paths) - len(written), seconds, cleanup=stats)
    result.type_share = type_shares(found)
    return result


def _import_one(src: Path, image: Path, target: Path, lut: np.ndarray, label_set: str,
                cfg: SegmentConfig, stats: CleanupStats | None = None) -> list[str]:
    from PIL import Image

    ids = read_map(src)
    if ids.ndim != 2:
        raise DataError(f"{src}: parsing map is not single-channel (shape {ids.shape})")
    try:
        with Image.open(image) as im:
            size = im.size
    except OSError as exc:
        raise DataError(f"{image}: cannot read image ({exc})") from None
    if (ids.shape[1], ids.shape[0]) != size:
        raise DataError(f"{src}: map is {ids.shape[1]}x{ids.shape[0]} but its image {image.name} is "
                        f"{size[0]}x{size[1]}", hint="maps must have their image's size")
    if ids.min() < 0 or ids.max() > 255:
        raise DataError(f"{src}: label id(s) outside 0..255 (label set {label_set})")
    try:
        atr_map = convert_map(ids, lut, f"{src} ({label_set})")
    except ValueError as exc:
        raise DataError(str(exc), hint="pick the maps' label set with --label-set, or map ids with "
                                       "label_set = custom and a segment.labels table in dp.toml") from None
    atr_map = _cleanup(atr_map, cfg, stats)
    save_map(atr_map, target)
    return types_present(atr_map)

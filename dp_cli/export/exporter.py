"""Write a person dataset (plus generated records) in one of the supported formats.

Everything is checked before anything is written (each source image must decode); the export is built in a staging folder beside
the output and renamed into place at the end, so a failed or interrupted export leaves the previous
output (if any) as it was and never a half-written annotation file. Every export holds `export.json`;
--overwrite replaces only a folder that holds one.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dp_cli.data.dataset import PersonDataset, PersonRecord, validate_records
from dp_cli.data.formats import IMAGES_DIR, get_format
from dp_cli.errors import DataError
from dp_cli.export.generated import GeneratedRecords
from dp_cli.export.ids import IdPlan, assign_person_ids
from dp_cli.fsutil import check_outputs, naming_path, replace_dir, staging_dir, write_json_atomic

MARKER = "export.json"  # what made the folder; --overwrite replaces only a folder that holds it


@dataclass
class ExportResult:
    """What an export wrote."""

    out: Path
    format: str
    annotation_file: Path
    counts: dict[str, dict[str, int]]
    images: str  # copied | linked
    generated: int = 0
    skipped: int = 0
    ids: IdPlan | None = None
    warnings: list[str] = field(default_factory=list)
    train_with: dict[str, str] = field(default_factory=dict)  # trainer setting -> value that finds this export

    def payload(self) -> dict:
        ids = self.ids
        return {"out": str(self.out), "format": self.format, "annotation_file": str(self.annotation_file),
                "images": self.images, "splits": self.counts, "generated_records": self.generated,
                "new_persons": ids.new_persons if ids else 0, "skipped_without_annotation": self.skipped,
                "relabelled": bool(ids and ids.relabelled), "test_id_shift": ids.shift if ids else 0,
                "train_with": self.train_with, "warnings": self.warnings}


def export_dataset(dataset: PersonDataset, format: str, out: Path, generated: GeneratedRecords | None = None,
                   link: bool = False, overwrite: bool = False,
                   on_start: Callable[[int], Callable[[], None]] | None = None) -> ExportResult:
    """Export `dataset` (+ `generated`) as `format` into `out`; returns counts per split.

    `on_start(total files)`, called once everything checks out, returns a per-file callback (progress).
    """
    fmt = get_format(format)
    out = Path(out).expanduser().absolute()
    # 1. Check inputs: the output folder, then every record and every source file.
    check_output(out, dataset, generated, overwrite)
    gen = generated or GeneratedRecords()
    records, plan = assign_person_ids(dataset.records, gen.records, gen.variants, relabel=fmt.name != "native")
    validate_records(records, f"export of {dataset.root}")
    check_splits(records, fmt)
    files = plan_files(dataset, records, gen, fmt)
    # 2. Stage: place images, write the annotation file, then swap the folder into place.
    staging = staging_dir(out.parent, prefix=f".{out.name}.tmp-")
    try:
        mode = place_files(files, staging, link, on_start(len(files)) if on_start else None)
        staged = PersonDataset(staging, [_retarget(r, fmt) for r in records], label_set=dataset.label_set,
                               name=dataset.name, source_format=fmt.name)
        annotation = fmt.write(staged, staging)
        write_json_atomic(staging / MARKER, {"tool": "dp export", "format": fmt.name, "source": str(dataset.root)})
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    counts = PersonDataset(out, records).counts()
    train_with, warnings = trainer_settings(fmt, out)
    return ExportResult(out, fmt.name, out / annotation.name, counts, mode, len(gen.records), gen.skipped, plan,
                        warnings, train_with)


def trainer_settings(fmt, out: Path) -> tuple[dict[str, str], list[str]]:
    """What to pass the trainer so that it reads `out`, and a warning when the folder name hides it.

    IRRA opens `<--root_dir>/<dataset folder>` (datasets/cuhkpedes.py: `op.join(root, 'CUHK-PEDES')`),
    so an IRRA export must be named CUHK-PEDES, ICFG-PEDES or RSTPReid; TBPS-CLIP takes both folders.
    """
    irra_dir = getattr(fmt, "irra_dir", None)
    if irra_dir:
        settings = {"IRRA --root_dir": str(out.parent), "IRRA --dataset_name": irra_dir}
        if out.name == irra_dir:
            return settings, []
        return {}, [f"IRRA reads {out.parent / irra_dir}, not {out}: rename the folder to {irra_dir}, "
                    f"or export again with --out {out.parent / irra_dir}"]
    if fmt.name == "tbps-clip":
        return {"TBPS-CLIP anno_dir": str(out), "TBPS-CLIP image_dir": str(out / IMAGES_DIR)}, []
    return {}, []


def check_output(out: Path, dataset: PersonDataset, generated: GeneratedRecords | None, overwrite: bool) -> None:
    """The output folder must not be or hold an input, and must be new, empty, or (with --overwrite) an export."""
    inputs = {"--dataset": dataset.root}
    if generated and generated.sources:
        inputs["--edits images"] = os.path.commonpath([p.parent for p in generated.sources.values()])
    check_outputs({"--out": out}, inputs, marker=MARKER, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)


def check_splits(records: list[PersonRecord], fmt) -> None:
    """Every record's split must exist in the target format (ICFG-PEDES has no val)."""
    for rec in records:
        if rec.split not in fmt.splits:
            raise DataError(f"record {rec.id!r}: split {rec.split!r} cannot be written as {fmt.name}",
                            hint=f"{fmt.name} splits are {', '.join(fmt.splits)}; export another format")


def _retarget(record: PersonRecord, fmt) -> PersonRecord:
    """The record as it lives in the output (images moved into the format's layout)."""
    from dataclasses import replace

    return replace(record, image=fmt.target_image(record),
                   parsing=record.parsing if fmt.name == "native" else None)


def plan_files(dataset: PersonDataset, records: list[PersonRecord], gen: GeneratedRecords,
               fmt) -> dict[str, Path]:
    """Output path -> source file, for images (and parsing maps in native); missing, clashing or undecodable
    files are errors naming the record."""
    files: dict[str, Path] = {}
    owner: dict[str, str] = {}
    for rec in records:
        pairs = [(fmt.target_image(rec), gen.sources.get(rec.id) or dataset.image_path(rec))]
        if fmt.name == "native" and rec.parsing:
            pairs.append((rec.parsing, dataset.parsing_path(rec)))
        for target, source in pairs:
            if target in files:
                raise DataError(f"records {owner[target]!r} and {rec.id!r} both map to {target} in {fmt.name}",
                                hint="rename one of the images")
            if not source.is_file():
                raise DataError(f"record {rec.id!r}: file {source} not found", hint="fix the dataset or its paths")
            files[target], owner[target] = source, rec.id
    check_decodes(files, owner)
    return files


def check_decodes(files: dict[str, Path], owner: dict[str, str]) -> None:
    """Every source image must decode (IRRA retries an unreadable image forever); the first failure in
    record order raises DataError naming the record and the file."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # decoding releases the GIL
        problems = pool.map(_decode_problem, files.values(), chunksize=64)
        for target, problem in zip(files, problems):
            if problem:
                raise DataError(f"record {owner[target]!r}: image {files[target]} does not decode ({problem})",
                                hint="replace or remove the file; dp export writes only images that open")


def _decode_problem(path: Path) -> str | None:
    """Why `path` is not a whole image (PIL's verify, then a full decode for truncated data), or None."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()  # structure and checksums (PNG CRCs)
        with Image.open(path) as im:
            im.load()  # truncated or corrupt pixel data, which verify does not read
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error ...
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text[:200]
    return None


def place_files(files: dict[str, Path], root: Path, link: bool, on_file: Callable[[], None] | None = None) -> str:
    """Copy (or hard-link, falling back to symlinks across devices) every file under `root`."""
    made: set[Path] = set()
    mode = "linked" if link else "copied"
    for target, source in files.items():
        dest = root / target
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        with naming_path(dest):  # a full disk names the file
            if not link:
                shutil.copyfile(source, dest)
            else:
                try:
                    os.link(source, dest)
                except OSError:
                    os.symlink(source.absolute(), dest)
                    mode = "linked (symlinks)"
        if on_file:
            on_file()
    return mode

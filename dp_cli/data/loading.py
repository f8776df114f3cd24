"""Load any supported person dataset (a folder or an annotation file) into one `PersonDataset`."""

from __future__ import annotations

from pathlib import Path

from dp_cli.data.dataset import PersonDataset
from dp_cli.data.formats import FORMAT_NAMES, FORMATS, DatasetFormat, format_for_file, get_format
from dp_cli.errors import DataError

AUTO = "auto"


NOT_FOUND_HINT = "pass --dataset, or set [data] dataset in dp.toml; `dp toy` makes one"


def load_dataset(path: str | Path, format: str | None = None, hint: str = NOT_FOUND_HINT) -> PersonDataset:
    """Read a dataset folder or annotation file; the format is named, or detected from the file.
    `hint` is what a missing path's error tells the user to do (each command names its own setting)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: dataset not found", hint=hint)
    fmt, annotation_file = resolve_format(path, format)
    return fmt.read(annotation_file)


def resolve_format(path: Path, format: str | None = None) -> tuple[DatasetFormat, Path]:
    """The format and annotation file for a dataset folder or file."""
    if format and format != AUTO:
        fmt = get_format(format)
        if path.is_dir() and not (path / fmt.filename).is_file():
            others = [cls.name for cls in FORMATS.values() if (path / cls.filename).is_file()]
            found = f"; this folder holds a {others[0]} dataset" if len(others) == 1 else ""
            raise DataError(f"{path}: no {fmt.filename} for format {fmt.name}{found}",
                            hint="leave the format to detection (auto), or name the one the folder holds")
        return fmt, (path / fmt.filename if path.is_dir() else path)
    if path.is_dir():
        return _detect_in_folder(path)
    fmt = format_for_file(path) or _sniff(path)
    return fmt, path


FORMAT_HOW = "[data] format in dp.toml, or --input-format for dp export"


def _detect_in_folder(root: Path) -> tuple[DatasetFormat, Path]:
    found = [cls() for cls in FORMATS.values() if (root / cls.filename).is_file()]
    if not found:
        files = ", ".join(cls.filename for cls in FORMATS.values())
        raise DataError(f"{root}: no dataset annotation file found (looked for {files})",
                        hint=f"point at the annotation file; name its format with {FORMAT_HOW}")
    if len(found) > 1:
        names = ", ".join(f.name for f in found)
        raise DataError(f"{root}: several annotation files found ({names})", hint=f"name the format with {FORMAT_HOW}")
    return found[0], root / found[0].filename


def _sniff(path: Path) -> DatasetFormat:
    """Tell the format of a renamed annotation file from its first bytes, when that is unambiguous."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    stripped = head.lstrip()
    if stripped.startswith("{"):
        return get_format("native")
    if stripped.startswith("[") and '"img_path"' in head:
        return get_format("rstpreid")
    raise DataError(f"{path}: cannot tell the dataset format from the file",
                    hint=f"name it with --format ({', '.join(FORMAT_NAMES)})")

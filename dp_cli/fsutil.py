"""Crash-safe file writing (temporary name then rename; append-only JSONL flushed and fsynced), the one
JSONL reader, and the one guard that keeps outputs off the inputs."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping


@contextlib.contextmanager
def naming_path(path: str | os.PathLike) -> Iterator[None]:
    """Give an OSError raised inside without a file name (a full disk on write or fsync) `path` as its name,
    so that the one-line error says which file could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from None


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is fsynced and renamed over `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sfx = suffix if suffix is not None else target.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{sfx}", dir=target.parent)
    tmp_path = Path(tmp)
    try:  # from here on the temporary file goes again on any exit (Ctrl-C included)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        with naming_path(target):
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp_path, 0o666 & ~_umask())  # again: a writer may have made the file anew (safetensors: 0600)
            os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# what atomic_path leaves (.NAME.XXXXXXXX.tmp.png) when a process is killed outright (SIGKILL, power loss):
# nothing can remove it then but the next run
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(?:\.\w+)?$")
_RANDOM = re.compile(r"[a-z0-9_]{8}")  # the part tempfile adds to a name


def remove_stale_temps(folder: str | os.PathLike, recursive: bool = False) -> int:
    """Delete the temporary files a killed dp run left in `folder`; returns how many went."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    found = folder.rglob(".*") if recursive else folder.glob(".*")
    stale = [p for p in found if _TEMP_NAME.match(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def staging_dir(parent: str | os.PathLike, prefix: str, suffix: str = "") -> Path:
    """A new empty folder in `parent` (a hidden temporary name) to build an output in, then rename into
    place: it has the permissions the umask gives a new folder (mkdtemp makes it 0700, which a rename
    would carry over to the output). Staging folders of the same name that a killed run left go first."""
    _remove_stale_dirs(parent, prefix, suffix)
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


def _remove_stale_dirs(parent: str | os.PathLike, prefix: str, suffix: str = "") -> None:
    """Remove the folders mkdtemp(prefix, suffix) made in `parent` that a killed run left (prefix + its 8
    random characters + suffix; nothing else of that prefix)."""
    for old in Path(parent).glob(glob.escape(prefix) + "*" + glob.escape(suffix)):
        if old.is_dir() and _RANDOM.fullmatch(old.name[len(prefix):len(old.name) - len(suffix)]):
            shutil.rmtree(old, ignore_errors=True)


def replace_dir(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Rename the complete folder `new` to `target`; an existing `target` is moved aside first and removed only
    after the rename, and put back if anything (Ctrl-C, SIGTERM) stops the swap half-way."""
    new, target = Path(new), Path(target)
    prefix = f".{target.name}.old-"
    _remove_stale_dirs(target.parent, prefix)  # what a swap killed outright (SIGKILL) in its last rmtree left
    if not target.exists():
        os.replace(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        os.replace(target, aside / "old")
        os.replace(new, target)
    except BaseException:
        if (aside / "old").exists() and not target.exists():
            os.replace(aside / "old", target)
        raise
    finally:
        if not (aside / "old").exists() or target.exists():
            shutil.rmtree(aside, ignore_errors=True)


def usual_modes(folder: str | os.PathLike) -> None:
    """Give every file and folder under `folder` (itself included) the modes the umask gives new ones:
    safetensors writes its files 0600 and mkdtemp its folders 0700, so a model or checkpoint written
    through them would be unreadable to the rest of a group that shares the machine."""
    mask = _umask()
    folder = Path(folder)
    os.chmod(folder, 0o777 & ~mask)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    """Write text to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    """Write bytes to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write JSON to `target` atomically."""
    write_text_atomic(target, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_jsonl_atomic(target: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write JSONL to `target` atomically."""
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


# the formats an edited RGB image is written in, by suffix (PIL knows more, but cannot write RGB in all)
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF"}


def image_format(path: str | os.PathLike) -> str | None:
    """The image format for the path's suffix (IMAGE_FORMATS); None for any other suffix."""
    return IMAGE_FORMATS.get(Path(path).suffix.lower())


def save_image_atomic(image, target: str | os.PathLike, format: str | None = None) -> None:
    """Save a PIL image atomically, in the format its suffix names (PNG when it names none) unless given."""
    target = Path(target)
    fmt = format or image_format(target) or "PNG"
    with atomic_path(target) as tmp:
        image.save(tmp, format=fmt)


class JsonlAppender:
    """Append whole JSON lines; each line is flushed and fsynced before `append` returns."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_jsonl_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        with naming_path(self.path):
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def repair_jsonl_tail(path: Path) -> int:
    """Cut a partial last line left by a crash; returns the number of bytes removed."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # find the last newline and cut after it
        pos, chunk = size, 65536
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            buf = fh.read(pos - start)
            idx = buf.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            pos = start
        else:
            keep = 0
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
        return size - keep


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-empty line; raises DataError naming the line."""
    from dp_cli.errors import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as fh:
        yield from parse_jsonl(fh, str(path))


def parse_jsonl(lines: Iterable[bytes | str], name: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-empty line of a binary file, a text stream or a list of lines;
    bytes are decoded as UTF-8. Any problem is a DataError naming `name`:line."""
    from dp_cli.errors import DataError

    hint = "save the file as UTF-8 text"
    it, lineno = iter(lines), 0
    while True:
        try:
            line = next(it)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:  # a text stream decodes ahead in chunks: the line is not known
            raise DataError(f"{name}: not UTF-8 text ({exc.reason})", hint=hint) from None
        lineno += 1
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{name}:{lineno}: not UTF-8 text (byte 0x{line[exc.start]:02x} at column "
                                f"{exc.start + 1})", hint=hint) from None
        if line.strip():
            yield lineno, parse_json_line(line, f"{name}:{lineno}")


def parse_json_line(line: str, where: str) -> dict:
    """One JSONL line -> object; DataError naming `where` (file:line) when it is not a JSON object."""
    from dp_cli.errors import DataError

    try:
        obj = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, or a number too long to convert
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise DataError(f"{where}: malformed JSON ({msg})", hint="fix or remove that line") from None
    except RecursionError:
        raise DataError(f"{where}: malformed JSON (nested too deeply)", hint="fix or remove that line") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object per line, got {type(obj).__name__}")
    return obj


def rewrite_jsonl(path: str | os.PathLike, keep) -> int:
    """Rewrite a JSONL file atomically with only the rows `keep(row)` accepts (a partial last line left by a
    crash is cut first); returns the number of rows dropped. A missing file is left missing."""
    path = Path(path)
    if not path.exists():
        return 0
    repair_jsonl_tail(path)
    rows = [row for _, row in read_jsonl(path)]
    kept = [row for row in rows if keep(row)]
    if len(kept) != len(rows):
        write_jsonl_atomic(path, kept)
    return len(rows) - len(kept)


def check_outputs(outputs: Mapping[str, str | os.PathLike | None],
                  inputs: Mapping[str, str | os.PathLike | None] | None = None, *,
                  marker: str | None = None, overwrite: bool = False) -> None:
    """Refuse outputs that would destroy an input, each other, or a folder dp did not make.

    `outputs` and `inputs` map what names a path in messages (an option such as "--out") to the path;
    None and '-' (stdin/stdout) are skipped. Symlinks are followed. An output may not be, contain or sit
    inside an input; two outputs may not be the same file. With `marker`, the outputs are folders that
    are replaced whole: an existing non-empty one only with `overwrite`, and only when it holds `marker`
    (the file dp writes into each such folder it makes). Conflicting paths are usage errors (exit 2).
    """
    from dp_cli.errors import DataError, UsageError

    outs, ins = _real_paths(outputs), _real_paths(inputs or {})
    for name, out in outs:
        for in_name, src in ins:
            if _same(out, src):
                raise UsageError(f"{name} {out} is the same as {in_name} {src}",
                                 hint=f"give {name} another path; dp never writes over its inputs")
            if out in src.parents:
                raise UsageError(f"{name} {out} contains {in_name} {src}",
                                 hint=f"give {name} a path outside the inputs")
            if src in out.parents:
                raise UsageError(f"{name} {out} is inside {in_name} {src}",
                                 hint=f"give {name} a path outside the inputs")
    for i, (name, out) in enumerate(outs):
        for other_name, other in outs[i + 1:]:
            if _same(out, other):
                raise UsageError(f"{name} and {other_name} are the same file {out}",
                                 hint="give each output its own path")
    for name, out in outs:
        if out.exists() and not (out.is_file() or out.is_dir()):  # a device or pipe: reading it may never end
            raise DataError(f"{name} {out}: exists and is not a regular file or folder", hint=f"choose another {name}")
    for name, out in outs if marker else ():
        if out.exists() and not out.is_dir():
            raise DataError(f"{name} {out}: exists and is not a folder", hint=f"choose another {name}")
        found = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if found and not overwrite:
            raise DataError(f"{name} {out}: folder is not empty", hint=f"choose another {name}, or pass --overwrite")
        if found and marker not in found:
            shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
            raise DataError(f"{name} {out}: folder holds files dp did not write ({shown}; no {marker})",
                            hint=f"--overwrite replaces only a folder dp made; choose another {name}")


def check_output_file(name: str, path: str | os.PathLike | None) -> None:
    """Refuse, before any work, a file output that cannot be written: an existing folder, a parent path that
    is a file, or a folder that cannot be written into."""
    from dp_cli.errors import DataError

    if path is None or str(path) == "-":
        return
    path = Path(os.path.expanduser(str(path)))
    if path.is_dir():
        raise DataError(f"{name} {path}: is a folder", hint=f"give {name} a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{name} {path}: {parent} is a file, not a folder", hint=f"give {name} another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{name} {path}: cannot write in {parent}", hint=f"check its permissions, or give {name} "
                                                                          "another path")


def _real_paths(paths: Mapping[str, str | os.PathLike | None]) -> list[tuple[str, Path]]:
    return [(name, Path(os.path.realpath(os.path.expanduser(str(p))))) for name, p in paths.items()
            if p is not None and str(p) not in ("", "-")]


def _same(a: Path, b: Path) -> bool:
    """The same path after symlinks, or two names of one file (hard links)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False

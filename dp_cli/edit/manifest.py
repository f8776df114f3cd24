"""The edit manifest: which images are finished, per-process shard files, and the final merge."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from dp_cli.data.handoff import EditRow, read_edit_rows
from dp_cli.errors import DataError
from dp_cli.fsutil import write_jsonl_atomic

MANIFEST = "edits.jsonl"
SHARD_GLOB = "edits.shard-*.jsonl"


def shard_path(out_dir: Path, rank: int, world: int) -> Path:
    """The manifest one process appends to while running under torchrun / accelerate."""
    return out_dir / f"edits.shard-{rank:03d}-of-{world:03d}.jsonl"


def check_output_dir(out_dir: Path) -> None:
    """dp edit writes into a new or empty folder, or into one it wrote (its edits.jsonl or a shard, which
    exist before the first image is written): never over files of a folder it did not make."""
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if (out_dir / MANIFEST).exists() or any(out_dir.glob(SHARD_GLOB)):
        return
    raise DataError(f"--output-dir {out_dir}: folder is not empty and holds no {MANIFEST} (not written by "
                    f"`dp edit`)",
                    hint="choose a new or empty --output-dir; dp edit continues only in a folder it wrote")


def read_rows(path: Path) -> list[EditRow]:
    """Rows of a manifest or shard (none when it does not exist); a partial last line (a crash mid-append)
    is ignored."""
    return list(read_edit_rows(path, partial_tail=True)) if path.exists() else []


def all_rows(out_dir: Path) -> list[EditRow]:
    """The merged manifest plus every shard left by a distributed or interrupted run."""
    rows = read_rows(out_dir / MANIFEST)
    for shard in sorted(out_dir.glob(SHARD_GLOB)):
        rows += read_rows(shard)
    return rows


def finished_ids(out_dir: Path) -> set[str]:
    """Ids whose manifest line and image both exist (an image without its line is redone)."""
    return {r.id for r in all_rows(out_dir) if r.image and (out_dir / r.image).is_file()}


def merge_manifest(out_dir: Path, order: dict[str, int] | None = None) -> int:
    """Fold the shards into one edits.jsonl (no duplicates, plan order), then delete them; returns rows."""
    shards = sorted(out_dir.glob(SHARD_GLOB))
    if not shards and (out_dir / MANIFEST).exists():
        return len(read_rows(out_dir / MANIFEST))
    rows = _dedup(all_rows(out_dir))
    order = order or {}
    rows.sort(key=lambda r: (order.get(r.id, len(order)), r.id))
    write_jsonl_atomic(out_dir / MANIFEST, [r.to_json() for r in rows])
    for shard in shards:
        shard.unlink()
    return len(rows)


def _dedup(rows: Iterable[EditRow]) -> list[EditRow]:
    seen: dict[str, EditRow] = {}
    for row in rows:
        seen.setdefault(row.id, row)
    return list(seen.values())

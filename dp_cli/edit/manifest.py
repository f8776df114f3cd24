"""The edit manifest: which images are finished, per-process shard files, and the final merge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from dp_cli.fsutil import write_jsonl_atomic

MANIFEST = "edits.jsonl"
SHARD_GLOB = "edits.shard-*.jsonl"


def shard_path(out_dir: Path, rank: int, world: int) -> Path:
    """The manifest one process appends to while running under torchrun / accelerate."""
    return out_dir / f"edits.shard-{rank:03d}-of-{world:03d}.jsonl"


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a manifest or shard; a partial last line (a crash mid-append) is ignored."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # written by a process that died mid-line: not finished
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "id" in obj:
                rows.append(obj)
    return rows


def all_rows(out_dir: Path) -> list[dict[str, Any]]:
    """The merged manifest plus every shard left by a distributed or interrupted run."""
    rows = read_rows(out_dir / MANIFEST)
    for shard in sorted(out_dir.glob(SHARD_GLOB)):
        rows += read_rows(shard)
    return rows


def finished_ids(out_dir: Path) -> set[str]:
    """Ids whose manifest line and image both exist (an image without its line is redone)."""
    return {r["id"] for r in all_rows(out_dir) if (out_dir / str(r.get("image", ""))).is_file()}


def merge_manifest(out_dir: Path, order: dict[str, int] | None = None) -> int:
    """Fold the shards into one edits.jsonl (no duplicates, plan order), then delete them; returns rows."""
    shards = sorted(out_dir.glob(SHARD_GLOB))
    if not shards and (out_dir / MANIFEST).exists():
        return len(read_rows(out_dir / MANIFEST))
    rows = _dedup(all_rows(out_dir))
    order = order or {}
    rows.sort(key=lambda r: (order.get(r["id"], len(order)), r["id"]))
    write_jsonl_atomic(out_dir / MANIFEST, rows)
    for shard in shards:
        shard.unlink()
    return len(rows)


def _dedup(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["id"], row)
    return list(seen.values())

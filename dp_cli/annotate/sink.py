"""Exactly-once output: finished keys read back on start, whole lines appended, group-committed with fsync.

A line is counted as done only after its bytes were written by one `write` call and fsynced; a crash
leaves at most a partial last line, which `repair_jsonl_tail` cuts on the next start.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import BinaryIO, Callable

from dp_cli.data.handoff import AnnotationRow, FailureRow, read_annotation_rows, read_failure_rows
from dp_cli.errors import DataError
from dp_cli.fsutil import repair_jsonl_tail, rewrite_jsonl


def failures_path(output: Path | str, failures: Path | None) -> Path:
    """`<output stem>.failed.jsonl` beside the output; ./annotations.failed.jsonl for stdout."""
    if failures is not None:
        return Path(failures)
    if str(output) == "-":
        return Path("annotations.failed.jsonl")
    out = Path(output)
    return out.with_name(f"{out.stem}.failed.jsonl")


def read_keys(path: Path, reader: Callable[[Path], list]) -> dict[str, str]:
    """Key -> record id of the lines of an output or failure log we wrote (after the tail repair)."""
    return {row.key: row.id for row in reader(path)} if path.exists() else {}


def _output_rows(path: Path) -> list[AnnotationRow]:
    return read_annotation_rows(path, ("key",))


def _scrubbed(value, scrub: Callable[[str], str], top: bool = True):
    """`value` with `scrub` applied to every string inside it, never to field names, the JSON around them or
    a row's own `key` (a hash dp made: what a rerun skips by)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: v if top and k == "key" else _scrubbed(v, scrub, False) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v, scrub, False) for v in value]
    return value


class _Log:
    """One append-only JSONL destination with group commit (a file with fsync, or stdout)."""

    def __init__(self, path: Path | str, scrub: Callable[[str], str] = str):
        self.stdout = str(path) == "-"
        self.scrub = scrub
        self._pending: list[tuple[bytes, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        if self.stdout:
            self._fh: BinaryIO = sys.stdout.buffer
        else:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_jsonl_tail(self.path)
            self._fd: int | None = None  # opened on the first line, so an unused failure log is not created

    def _write(self, data: bytes) -> None:
        if self.stdout:
            self._fh.write(data)
            self._fh.flush()
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(data)
        while view:  # one write call for the whole group; loop only on a short write
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    async def append(self, row: dict) -> None:
        """Return once the row is durably written."""
        fut = asyncio.get_running_loop().create_future()
        self._pending.append(((json.dumps(_scrubbed(row, self.scrub), ensure_ascii=False) + "\n").encode("utf-8"),
                              fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await fut

    async def _flush(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._write, b"".join(data for data, _ in group))
            except OSError as exc:
                # stdout's reader is gone (`dp annotate -o - | head`): raised as is, the command ends quietly
                err = exc if isinstance(exc, BrokenPipeError) else DataError(
                    f"{getattr(self, 'path', '<stdout>')}: cannot write ({exc.strerror})")
                for _, fut in group:
                    fut.set_exception(err)
                continue
            for _, fut in group:
                fut.set_result(None)

    def close(self) -> None:
        if not self.stdout and self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Sink:
    """The output and failure logs of a run, and the keys already finished in them; `scrub` is applied to
    every line written (it removes the API key)."""

    def __init__(self, output: Path | str, failures: Path, retry_keys: set[str] | None = None,
                 scrub: Callable[[str], str] = str):
        self.out = _Log(output, scrub)
        self.failures_file = failures
        done = {} if self.out.stdout else read_keys(self.out.path, _output_rows)
        self.done_keys, self.done_ids = set(done), set(done.values())
        if retry_keys:  # the records about to be asked again leave the failure log
            rewrite_jsonl(failures, lambda row: row.get("key") not in retry_keys)
        self.fail = _Log(failures, scrub)
        self.failed_keys = set(read_keys(failures, read_failure_rows))

    def finished(self, key: str) -> bool:
        return key in self.done_keys or key in self.failed_keys

    async def done(self, row: AnnotationRow) -> None:
        await self.out.append(row.to_json())
        self.done_keys.add(row.key)

    async def failed(self, row: FailureRow) -> None:
        await self.fail.append(row.to_json())
        self.failed_keys.add(row.key)

    def complete(self) -> None:
        """The run finished: its output exists even when nothing was written to it (an empty annotations file
        for the next stage, not a missing one)."""
        if not self.out.stdout and not self.out.path.exists():
            self.out.path.touch()

    def close(self) -> None:
        self.out.close()
        self.fail.close()


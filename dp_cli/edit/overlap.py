"""Host work beside the pipeline: while a batch is edited, the next batch's inputs load and the previous
batch's images, masks and manifest lines are written, each on a background thread (PIL decoding and
encoding, numpy and fsync release the GIL, so on a GPU the host no longer stalls the denoising loop).

Order and crash safety are those of the serial loop: one writer thread takes the batches in order and
appends each manifest line after its image and mask are written; at most `depth` batches wait to be
written. Leaving the block (normally, on an error or on Ctrl-C) first writes everything already edited.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence


class Overlap:
    """`batches` yields (jobs, inputs) with the next batch loading meanwhile; `write` queues a batch's results."""

    def __init__(self, load: Callable[[list], list], write: Callable[[Any, Any], None], depth: int = 2):
        self._load, self._write, self.depth = load, write, depth
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="dp-edit-load")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dp-edit-write")
        self._pending: deque[Future] = deque()
        self.written = 0  # jobs whose image, mask and manifest line are written

    def batches(self, batches: Sequence[list]) -> Iterator[tuple[list, list]]:
        ahead = self._loader.submit(self._load, batches[0]) if batches else None
        for k, jobs in enumerate(batches):
            inputs = ahead.result()  # a loading error is raised here, in the caller's thread
            ahead = self._loader.submit(self._load, batches[k + 1]) if k + 1 < len(batches) else None
            yield jobs, inputs

    def write(self, jobs: list, outcomes: list) -> None:
        """Queue one batch's results (waits while `depth` batches are still being written; raises a write error)."""
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.depth):
            self._pending.popleft().result()
        self._pending.append(self._writer.submit(self._write_batch, jobs, outcomes))

    def _write_batch(self, jobs: list, outcomes: list) -> None:
        for job, outcome in zip(jobs, outcomes):
            self._write(job, outcome)
            self.written += 1

    def close(self, raise_errors: bool = True) -> None:
        """Wait for every queued write; the first write error is raised unless another one is on its way."""
        error = None
        while self._pending:
            try:
                self._pending.popleft().result()
            except Exception as exc:  # noqa: BLE001 - re-raised below, after every other write ran (a second
                error = error or exc  # Ctrl-C is not caught: it stops the wait)
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._writer.shutdown(wait=True)
        if error is not None and raise_errors:
            raise error

    def __enter__(self) -> "Overlap":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(raise_errors=exc_type is None)

"""dp_cli.edit.overlap: the next batch loads and the last one is written while a batch is edited."""

from __future__ import annotations

import threading
import time

import pytest

from dp_cli.edit.overlap import Overlap


def test_batches_load_ahead_and_write_in_order_on_other_threads():
    main = threading.get_ident()
    loaded_on, written, written_on = [], [], []

    def load(jobs):
        loaded_on.append(threading.get_ident())
        return [j * 10 for j in jobs]

    def write(job, outcome):
        time.sleep(0.002 * (job % 3))  # uneven write times must not reorder the lines
        written.append((job, outcome))
        written_on.append(threading.get_ident())

    batches = [[0, 1], [2, 3], [4], [5, 6, 7]]
    seen = []
    with Overlap(load, write) as io:
        for jobs, inputs in io.batches(batches):
            assert inputs == [j * 10 for j in jobs]
            seen.append(jobs)
            io.write(jobs, [x + 1 for x in inputs])
    assert seen == batches
    assert written == [(j, j * 10 + 1) for j in range(8)] and io.written == 8
    assert main not in loaded_on and main not in written_on


def test_the_next_batch_loads_while_this_one_is_edited():
    started = threading.Event()

    def load(jobs):
        if jobs == [1]:
            started.set()
        return jobs

    with Overlap(load, lambda job, outcome: None) as io:
        for jobs, _ in io.batches([[0], [1]]):
            if jobs == [0]:
                assert started.wait(5)  # batch 1 started loading before batch 0 was handed back
            io.write(jobs, jobs)


def test_a_loading_error_is_raised_in_the_caller_after_the_edited_batches_are_written():
    written = []

    def load(jobs):
        if jobs == [2]:
            raise ValueError("record 2: cannot read")
        return jobs

    with pytest.raises(ValueError, match="record 2"):
        with Overlap(load, lambda job, outcome: written.append(job)) as io:
            for jobs, inputs in io.batches([[0], [1], [2], [3]]):
                io.write(jobs, inputs)
    assert written == [0, 1]


def test_an_interrupt_still_writes_what_was_edited():
    written = []

    def slow_write(job, outcome):
        time.sleep(0.05)
        written.append(job)

    with pytest.raises(KeyboardInterrupt):
        with Overlap(lambda jobs: jobs, slow_write) as io:
            for jobs, inputs in io.batches([[0, 1], [2, 3], [4]]):
                io.write(jobs, inputs)
                if jobs == [2, 3]:
                    raise KeyboardInterrupt
    assert written == [0, 1, 2, 3]


def test_a_write_error_reaches_the_caller():
    def write(job, outcome):
        if job == 1:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        with Overlap(lambda jobs: jobs, write, depth=1) as io:
            for jobs, inputs in io.batches([[0], [1], [2], [3]]):
                io.write(jobs, inputs)
    assert io.written == 1  # job 0; the error stopped the loop before batch 2 was handed over

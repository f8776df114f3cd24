"""Checkpoint rotation and resume lookup (the seed's keep_only_last_checkpoint / keep_interval)."""

from __future__ import annotations

import json

import pytest

from dp_cli.errors import ConfigError, DataError
from dp_cli.train.checkpoints import STATE_FILE, list_checkpoints, read_state, resolve_resume, to_delete
from dp_cli.train.config import TrainConfig, parse_resolution


def test_keep_only_last_keeps_interval_multiples():
    assert to_delete([200, 400, 10000, 10200], 10400, keep_only_last=True, keep_interval=10000,
                     total_limit=None) == [200, 400, 10200]
    assert to_delete([2, 4], 6, keep_only_last=True, keep_interval=None, total_limit=None) == [2, 4]


def test_total_limit_removes_oldest_when_not_keep_only_last():
    assert to_delete([2, 4, 6], 8, keep_only_last=False, keep_interval=None, total_limit=2) == [2, 4]
    assert to_delete([2, 4, 6], 8, keep_only_last=False, keep_interval=None, total_limit=None) == []
    assert to_delete([2, 4], 6, keep_only_last=False, keep_interval=4, total_limit=2) == [2]


def test_resume_latest_picks_newest_finished_checkpoint(tmp_path):
    for step in (5, 20, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / STATE_FILE).write_text(json.dumps({"global_step": step, "epoch": 1,
                                                                                "batches_in_epoch": 2, "samples_seen": 8}))
    (tmp_path / ".checkpoint-30.tmp").mkdir()  # an interrupted save is never picked
    (tmp_path / "checkpoint-40").mkdir()  # nor a folder without the run state
    assert [s for s, _ in list_checkpoints(tmp_path)] == [5, 10, 20]
    assert resolve_resume("latest", tmp_path).name == "checkpoint-20"
    assert read_state(tmp_path / "checkpoint-20").global_step == 20
    assert resolve_resume("latest", tmp_path / "empty") is None
    with pytest.raises(ConfigError, match="not found") as info:
        resolve_resume(str(tmp_path / "checkpoint-99"), tmp_path)
    assert info.value.hint == f"use 'latest', or a checkpoint folder of {tmp_path}: checkpoint-5, checkpoint-10, " \
                              "checkpoint-20"
    with pytest.raises(ConfigError) as info:
        resolve_resume(str(tmp_path / "nope"), tmp_path / "empty")
    assert info.value.hint.endswith("(none yet)")
    with pytest.raises(DataError, match="not a dp checkpoint"):
        resolve_resume(str(tmp_path / "checkpoint-40"), tmp_path)


def test_resolution_forms():
    assert parse_resolution("128") == (128, 128) and parse_resolution("128x64") == (128, 64)
    with pytest.raises(ValueError):
        parse_resolution("big")
    assert TrainConfig(resolution=64).size == (64, 64)

"""train_log.jsonl after a resume holds each step once: the lines a killed run wrote after the checkpoint
it is resumed from are dropped before the resumed run appends (issue 15, item 7)."""

from __future__ import annotations

import json


def test_a_resumed_run_drops_the_log_lines_after_its_checkpoint(dp, train_args, tmp_path):
    out = tmp_path / "run"
    # a run that went on past its last checkpoint (step 2) and was "killed" after step 3
    first = dp("train", *train_args(out, max_train_steps=3, checkpointing_steps=2))
    assert first.exit_code == 0, first.stderr
    log = out / "train_log.jsonl"
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]
    with open(log, "a") as fh:  # and a partial line, as a kill in the middle of a write leaves
        fh.write('{"step": 4, "lo')
    second = dp("--json", "train", *train_args(out, max_train_steps=3, checkpointing_steps=2,
                                                resume_from_checkpoint="latest"))
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout)["resumed_from"] == str(out / "checkpoint-2")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert not list(out.glob(".train_log.jsonl.*"))  # the rewrite left no temporary file

"""Exactly once across SIGKILL, stdin -> stdout pipelines, and batch jobs resumed after a restart."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_rows, read_lines, write_rows
from fake_openai import FakeOpenAI

DP = [sys.executable, "-m", "dp_cli"]


def _env(srv, subprocess_env) -> dict[str, str]:
    return subprocess_env(drop=("OPENAI_", "DP_"), OPENAI_BASE_URL=srv.url)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_gives_exactly_one_line_per_input(tmp_path, subprocess_env):
    rows = make_rows(240)
    write_rows(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    cmd = DP + ["-q", "annotate", "-i", str(tmp_path / "in.jsonl"), "-o", str(out), "--concurrency", "8",
                "--slice-step", "40"]
    count = lambda: len(read_lines(out)) if out.exists() else 0  # noqa: E731
    rng = random.Random(7)
    with FakeOpenAI(latency=0.05) as srv:
        for run in range(4):
            proc = subprocess.Popen(cmd, env=_env(srv, subprocess_env), cwd=tmp_path, stderr=subprocess.DEVNULL)
            if run % 2 == 0:  # even runs: wait until this run committed something; odd runs: maybe still starting
                start, deadline = count(), time.monotonic() + 30
                while count() <= start and time.monotonic() < deadline:
                    time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            lines = read_lines(out) if out.exists() else []  # no partial line after a SIGKILL
            assert len({r["key"] for r in lines}) == len(lines)  # no duplicate key
        assert 0 < len(lines) < len(rows)
        res = subprocess.run(cmd, env=_env(srv, subprocess_env), cwd=tmp_path, capture_output=True)
        assert res.returncode == 0, res.stderr
    lines = read_lines(out)
    assert sorted(r["id"] for r in lines) == sorted(r["id"] for r in rows)
    assert len({r["key"] for r in lines}) == len(rows)


def test_stdin_to_stdout_pipeline(tmp_path, subprocess_env):
    write_rows(tmp_path / "in.jsonl", make_rows(12, with_id=False))
    with FakeOpenAI(latency=0.005) as srv:
        shell = (f"cat in.jsonl | {sys.executable} -m dp_cli annotate -i - -o - --text-start 2 --text-end 9 "
                 f"--slice-step 3 | {sys.executable} -c \"import sys,json; "
                 f"print(sorted(int(json.loads(l)['id']) for l in sys.stdin))\"")
        res = subprocess.run(shell, shell=True, env=_env(srv, subprocess_env), cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[2, 3, 4, 5, 6, 7, 8]"
    assert "slice 3/3" in res.stderr and "annotate" in res.stderr  # progress and summary on stderr only


def _batch_cmd(tmp_path, *extra):
    return DP + ["-q", "annotate", "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"),
                 "--backend", "openai-batch", "--poll-interval", "0.05", "--slice-step", "5", *extra]


def test_batch_backend_one_job_per_slice_and_retry_round(tmp_path, subprocess_env):
    write_rows(tmp_path / "in.jsonl", make_rows(10, {3: "FAULTDROPx1", 7: "FAULTREFUSEx9"}))
    with FakeOpenAI() as srv:
        res = subprocess.run(_batch_cmd(tmp_path, "--attempts", "2"), env=_env(srv, subprocess_env), capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        # slice 0-5: one job + one retry job for record 3; slice 5-10: one job + one retry job for 7
        assert len(srv.state.batches) == 4
    assert sorted(r["id"] for r in read_lines(tmp_path / "out.jsonl")) == [f"p{i}__v0" for i in range(10) if i != 7]
    assert [r["reason"] for r in read_lines(tmp_path / "out.failed.jsonl")] == ["refusal"]
    assert not (tmp_path / "out.batch.json").exists()  # state is dropped once results are committed


def test_batch_restart_between_create_and_completion_resumes_the_same_batch(tmp_path, subprocess_env):
    write_rows(tmp_path / "in.jsonl", make_rows(5))
    state = tmp_path / "out.batch.json"
    with FakeOpenAI() as srv:
        srv.state.hold_batches = True  # the batch stays in_progress
        proc = subprocess.Popen(_batch_cmd(tmp_path), env=_env(srv, subprocess_env), stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        batch_id = json.loads(state.read_text())["batches"]["0-5"]["batch_id"]
        assert list(srv.state.batches) == [batch_id] and not (tmp_path / "out.jsonl").exists()
        srv.state.hold_batches = False
        res = subprocess.run(_batch_cmd(tmp_path), env=_env(srv, subprocess_env), capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert list(srv.state.batches) == [batch_id]  # resumed, not created again
    assert len(read_lines(tmp_path / "out.jsonl")) == 5 and not state.exists()

"""Crash safety and sharding of dataset mode, through the real entry point in subprocesses (slow)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(subprocess_env) -> dict[str, str]:
    return subprocess_env(cpu=True, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def args(model_dir, world, out, *extra) -> list[str]:
    return ["-m", "dp_cli", "-q", "edit", "--model", str(model_dir), "--dataset", str(world), "--catalog",
            str(world / "catalog"), "--output-dir", str(out), "--steps", "2", "--mask-dilation", "1",
            "--feather", "1", "--variants-per-person", "2", *extra]


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "edits.jsonl").read_text().splitlines()]


def manifest_lines(out: Path) -> int:
    files = [out / "edits.jsonl", *out.glob("edits.shard-*.jsonl")]
    return sum(f.read_text().count("\n") for f in files if f.exists())


@pytest.fixture(scope="module")
def single(model_dir, world, tmp_path_factory, env) -> Path:
    out = tmp_path_factory.mktemp("edit-single") / "out"
    res = subprocess.run([sys.executable, *args(model_dir, world, out, "--batch-size", "2")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


@pytest.mark.slow
def test_resume_after_a_kill_completes_without_duplicates(single, model_dir, world, tmp_path, env):
    out = tmp_path / "out"
    cmd = [sys.executable, *args(model_dir, world, out, "--batch-size", "1", "--steps", "6")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while manifest_lines(out) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    partial = manifest_lines(out)
    expected = len(rows(single))
    assert 2 <= partial < expected
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ids = [r["id"] for r in rows(out)]
    assert len(ids) == len(set(ids)) == expected
    assert sorted(ids) == sorted(r["id"] for r in rows(single))
    assert all((out / r["image"]).is_file() and (out / r["mask"]).is_file() for r in rows(out))
    assert not list(out.rglob(".*.tmp*"))  # no half-written file left behind


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_writes_every_edited_image_with_its_line(model_dir, world, tmp_path, env, sig, code):
    """Loading and writing run on background threads: an interrupt (Ctrl-C, or a scheduler's SIGTERM) still
    leaves every written image with its manifest line and no line without its image, and a rerun finishes
    the rest."""
    out = tmp_path / "out"
    cmd = [sys.executable, *args(model_dir, world, out, "--batch-size", "1", "--steps", "6")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while manifest_lines(out) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err and "rerun the same command to resume" in err
    lines = rows(out)
    images = sorted(p.name for p in (out / "images").glob("*.png"))
    assert len(lines) >= 2 and sorted(Path(r["image"]).name for r in lines) == images
    assert all((out / r["mask"]).is_file() for r in lines)
    assert not list(out.rglob(".*.tmp*"))
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ids = [r["id"] for r in rows(out)]
    assert len(ids) == len(set(ids)) > len(lines)


@pytest.mark.slow
def test_two_processes_under_torchrun_make_the_same_outputs_as_one(single, model_dir, world, tmp_path, env):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *args(model_dir, world, out, "--batch-size", "2")[0:]]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    two, one = rows(out), rows(single)
    assert [r["id"] for r in two] == [r["id"] for r in one]  # one merged manifest, in plan order
    assert not list(out.glob("edits.shard-*"))
    for a, b in zip(two, one):
        assert {k: v for k, v in a.items()} == {k: v for k, v in b.items()}
        ia = np.asarray(Image.open(out / a["image"]), dtype=int)
        ib = np.asarray(Image.open(single / b["image"]), dtype=int)
        assert np.abs(ia - ib).max() <= 1

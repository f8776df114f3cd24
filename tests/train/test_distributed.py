"""`torchrun --nproc_per_node 2` on CPU (gloo): trains, checkpoints once, resumes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest



def torchrun(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dp_cli", "--json", "train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_torchrun_two_processes_train_checkpoint_and_resume(train_args, tmp_path, losses_of, subprocess_env):
    out = tmp_path / "dist"
    env = subprocess_env(cpu=True, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    first = torchrun(train_args(out, train_batch_size=2, max_train_steps=2, checkpointing_steps=2), tmp_path, env)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["processes"] == 2 and summary["samples"] == 8  # 2 steps x 2 per process x 2 processes
    state = out / "checkpoint-2"
    assert (state / "random_states_0.pkl").exists() and (state / "random_states_1.pkl").exists()
    second = torchrun(train_args(out, train_batch_size=2, max_train_steps=3, checkpointing_steps=2,
                                 resume_from_checkpoint="latest"), tmp_path, env)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = json.loads(second.stdout.strip().splitlines()[-1])
    assert resumed["resumed_from"] == str(state) and resumed["steps"] == 1
    assert sorted(losses_of(out)) == [1, 2, 3]
    assert (out / "model" / "dp_config.json").exists()


@pytest.mark.slow
def test_accelerate_launch_two_processes(train_args, tmp_path, subprocess_env):
    out = tmp_path / "acc"
    env = subprocess_env(cpu=True, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "dp_cli", "--json",
           "train", *train_args(out, train_batch_size=2, max_train_steps=1, checkpointing_steps=1)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["processes"] == 2 and summary["checkpoints"] == ["checkpoint-1"]

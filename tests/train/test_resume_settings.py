"""A resumed run honours this run's learning rate, refuses settings it cannot honour, and a finished run's
model is never replaced by a fresh run over it; what training writes is readable under the umask."""

from __future__ import annotations

import json
import os

import pytest
import torch


def _lrs(out) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    return {row["step"]: row["lr"] for row in rows}


def test_a_resume_takes_the_new_learning_rate_and_says_so(dp, train_args, tmp_path):
    out = tmp_path / "run"
    first = dp("train", *train_args(out, max_train_steps=2, checkpointing_steps=2, lr="1e-4"))
    assert first.exit_code == 0, first.stderr
    second = dp("train", *train_args(out, max_train_steps=4, checkpointing_steps=2, lr="5e-5",
                                     resume_from_checkpoint="latest"))
    assert second.exit_code == 0, second.stderr
    lrs = _lrs(out)
    assert lrs[1] == pytest.approx(1e-4) and lrs[2] == pytest.approx(1e-4)
    assert lrs[3] == pytest.approx(5e-5) and lrs[4] == pytest.approx(5e-5)  # constant schedule: the new base
    assert "learning rate of parameter group 0: 0.0001 -> 5e-05" in " ".join(second.stderr.split())


def test_a_resume_with_settings_it_cannot_honour_is_refused(dp, train_args, tmp_path, dataset_writer):
    out = tmp_path / "run"
    first = dp("train", *train_args(out, max_train_steps=2, checkpointing_steps=2))
    assert first.exit_code == 0, first.stderr
    other = dataset_writer(tmp_path / "other", n=4)
    for over in ({"dataset": other}, {"seed": 8}, {"train_batch_size": 2}):
        res = dp("train", *train_args(out, max_train_steps=4, resume_from_checkpoint="latest", **over))
        assert res.exit_code == 1, res.stderr
        key = next(iter(over))
        assert f"checkpoint-2 was trained with other settings: {key}" in res.stderr and "Traceback" not in res.stderr
    assert sorted(_lrs(out)) == [1, 2]  # nothing trained, nothing logged
    # the settings it was trained with, spelled differently (a relative dataset path), resume fine
    rel = os.path.relpath(train_args(out)[train_args(out).index("--dataset") + 1])
    res = dp("train", *train_args(out, max_train_steps=3, resume_from_checkpoint="latest", dataset=rel))
    assert res.exit_code == 0, res.stderr


def test_a_moved_dataset_resumes_and_another_process_count_is_refused(dp, train_args, tmp_path, tiny_dataset):
    import shutil

    out = tmp_path / "run"
    assert dp("train", *train_args(out, max_train_steps=2, checkpointing_steps=2)).exit_code == 0
    moved = tmp_path / "scratch" / "ds"  # a job's copy of the same data in another place
    shutil.copytree(tiny_dataset, moved)
    res = dp("train", *train_args(out, max_train_steps=3, checkpointing_steps=3, resume_from_checkpoint="latest",
                                  dataset=moved))
    assert res.exit_code == 0, res.stderr
    assert f"dataset is {moved}" in " ".join(res.stderr.split())
    state = out / "checkpoint-3" / "dp_state.json"  # as 2 processes would have written it
    saved = json.loads(state.read_text())
    state.write_text(json.dumps({**saved, "settings": {**saved["settings"], "num_processes": 2}}))
    res = dp("train", *train_args(out, max_train_steps=4, resume_from_checkpoint="latest", dataset=moved))
    assert res.exit_code == 1 and "num_processes 2 -> 1" in res.stderr
    assert "launch 2 process(es)" in " ".join(res.stderr.split())


def test_the_first_update_after_a_resume_follows_this_runs_schedule():
    from types import SimpleNamespace

    from diffusers.optimization import get_scheduler

    from dp_cli.train.config import TrainConfig
    from dp_cli.train.loop import apply_optimizer_settings

    def fresh(total, lr):
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=lr)
        return opt, get_scheduler("linear", opt, num_warmup_steps=0, num_training_steps=total)

    old_opt, old_sched = fresh(4, 1e-4)
    for _ in range(2):
        old_opt.step()
        old_sched.step()
    opt, sched = fresh(8, 5e-5)  # the resumed run: twice as long, half the lr
    opt.load_state_dict(old_opt.state_dict())
    sched.load_state_dict(old_sched.state_dict())
    cfg = TrainConfig(lr=5e-5, unet_lr_scale=1.0)
    apply_optimizer_settings(cfg, opt, SimpleNamespace(scheduler=sched), 1)
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-5 * (8 - 2) / 8)  # not the old run's (4 - 2) / 4


def test_a_resume_past_the_last_step_is_refused(dp, train_args, tmp_path):
    out = tmp_path / "run"
    assert dp("train", *train_args(out, max_train_steps=3, checkpointing_steps=3)).exit_code == 0
    res = dp("train", *train_args(out, max_train_steps=2, resume_from_checkpoint="latest"))
    assert res.exit_code == 1 and "is at step 3, past this run's 2 steps" in res.stderr
    res = dp("train", *train_args(out, max_train_steps=3, resume_from_checkpoint="latest"))  # at the end: the model
    assert res.exit_code == 0, res.stderr


def test_a_fresh_run_never_replaces_a_finished_model(dp, train_args, tmp_path):
    out = tmp_path / "run"
    assert dp("train", *train_args(out, max_train_steps=2, checkpointing_steps=100)).exit_code == 0  # no checkpoint
    before = {p.name: p.read_bytes() for p in (out / "model" / "unet").iterdir()}
    for extra in ({}, {"resume_from_checkpoint": "latest"}):
        res = dp("train", *train_args(out, max_train_steps=1, checkpointing_steps=100, **extra))
        assert res.exit_code == 1 and "already holds a trained model (model/)" in res.stderr
    assert {p.name: p.read_bytes() for p in (out / "model" / "unet").iterdir()} == before


def test_weights_checkpoints_and_caches_get_the_umask_modes(dp, train_args, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert dp("train", *train_args(out, max_train_steps=2, checkpointing_steps=2)).exit_code == 0
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    wrong = [(str(p.relative_to(out)), oct(p.stat().st_mode & 0o777)) for p in files if p.stat().st_mode & 0o777 != 0o644]
    assert not wrong, wrong
    dirs = [p for p in out.rglob("*") if p.is_dir()]
    assert all(p.stat().st_mode & 0o777 == 0o755 for p in dirs), [(p, oct(p.stat().st_mode)) for p in dirs]


def test_a_checkpoint_of_an_earlier_dp_resumes_and_says_what_it_cannot_check(dp, train_args, tmp_path, tiny_dataset):
    out = tmp_path / "run"
    assert dp("train", *train_args(out, max_train_steps=2, checkpointing_steps=2)).exit_code == 0
    state = out / "checkpoint-2" / "dp_state.json"
    saved = json.loads(state.read_text())
    old = {k: v for k, v in saved["settings"].items()
           if not k.endswith("_path") and k not in ("dataset_records", "num_processes")}
    old["dataset"] = "/elsewhere/ds"  # the previous format: paths under their plain keys
    state.write_text(json.dumps({**saved, "settings": old}))
    res = dp("train", *train_args(out, max_train_steps=3, resume_from_checkpoint="latest"))
    assert res.exit_code == 0, res.stderr
    err = " ".join(res.stderr.split())
    assert "dataset is" in err and "/elsewhere/ds when checkpoint-2 was written" in err
    assert "written by an earlier dp" in err

"""`dataloader_num_workers`: a number or auto, resolved per device and process count."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError

from dp_cli.train.config import TrainConfig
from dp_cli.train.loop import loader_workers


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (3, 3), ("2", 2), (0, 0)])
def test_workers_take_a_number_or_auto(value, expected):
    assert TrainConfig(dataloader_num_workers=value).dataloader_num_workers == expected


@pytest.mark.parametrize("value", [-1, "many"])
def test_bad_workers_are_refused(value):
    with pytest.raises(ValidationError):
        TrainConfig(dataloader_num_workers=value)


def test_auto_is_0_on_cpu_and_up_to_4_per_gpu_process(monkeypatch):
    auto = TrainConfig()
    assert auto.dataloader_num_workers == "auto"
    assert loader_workers(auto, SimpleNamespace(device=torch.device("cpu"), num_processes=2)) == 0
    gpu = SimpleNamespace(device=torch.device("cuda", 0), num_processes=2)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert loader_workers(auto, gpu) == 4
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)  # e.g. a SLURM allocation
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert loader_workers(auto, gpu) == 1  # 2 cores per process: one for the process, one worker
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # 2 processes in all, one on this machine
    assert loader_workers(auto, gpu) == 3
    assert loader_workers(TrainConfig(dataloader_num_workers=6), gpu) == 6


def test_optimizer_groups_use_fused_adamw_and_fall_back_to_foreach(monkeypatch):
    from dp_cli.train.loop import build_optimizer

    model = torch.nn.Module()
    model.unet = torch.nn.Linear(3, 3)
    model.fusion = torch.nn.Linear(3, 3)
    cfg = TrainConfig(lr=1e-4, unet_lr_scale=0.5)
    opt = build_optimizer(cfg, model, num_processes=1)
    assert [g["lr"] for g in opt.param_groups] == [5e-5, 1e-4] and all(g["fused"] for g in opt.param_groups)
    real = torch.optim.AdamW

    def no_fused(params, fused=None, **kw):  # a torch without a fused kernel for this device
        if fused:
            raise RuntimeError("fused=True requires all the params to be floating point Tensors of supported devices")
        return real(params, **kw)

    fp16 = build_optimizer(TrainConfig(mixed_precision="fp16"), model, num_processes=1)
    assert all(g["foreach"] and not g.get("fused") for g in fp16.param_groups)  # the GradScaler skips steps
    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    opt = build_optimizer(cfg, model, num_processes=1)
    assert all(g["foreach"] and not g.get("fused") for g in opt.param_groups)


def test_compile_setting_reaches_the_model_parts():
    from dp_cli.config import ProjectFile, resolve_section
    from dp_cli.train.loop import configure_model

    assert TrainConfig().compile == "none"
    with pytest.raises(ValidationError, match="reduce-overhead"):
        TrainConfig(compile="fast")
    toml = ProjectFile(None, {"train": {"compile": "reduce-overhead"}})
    assert resolve_section(TrainConfig, "train", toml).compile == "reduce-overhead"
    cfg = resolve_section(TrainConfig, "train", toml, {"compile": "default"})  # the flag wins
    assert cfg.compile == "default"
    modes = []
    model = SimpleNamespace(compile_parts=modes.append)
    configure_model(cfg, model)
    configure_model(TrainConfig(), model)
    assert modes == ["default", "none"]

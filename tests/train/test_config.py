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
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert loader_workers(auto, gpu) == 4
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert loader_workers(auto, gpu) == 1  # 2 cores per process: one for the process, one worker
    assert loader_workers(TrainConfig(dataloader_num_workers=6), gpu) == 6

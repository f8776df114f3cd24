"""One device rule for every command (dp_cli.distributed.pick_device)."""

from __future__ import annotations

import types

import pytest
import torch

from dp_cli.distributed import pick_device
from dp_cli.errors import ModelError


def test_auto_is_the_process_device_or_the_best_available():
    assert pick_device("auto", types.SimpleNamespace(device=torch.device("cpu"))) == "cpu"
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    assert pick_device("auto") == pick_device(None) == pick_device("") == expected
    assert pick_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_cuda_is_a_one_line_error():
    with pytest.raises(ModelError, match="CUDA is not available"):
        pick_device("cuda:1")


def test_every_command_uses_the_one_rule():
    from dp_cli.eval.embeddings import resolve_device

    assert resolve_device("auto") == pick_device("auto")
    import dp_cli.edit.runner as runner
    import dp_cli.segment.model as segment

    assert runner.pick_device is pick_device and not hasattr(segment, "pick_device")


LAUNCH_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "RANK", "PMI_RANK",
               "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "LOCAL_RANK")


@pytest.fixture
def alone(monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_world_size_and_main_process_read_torchrun_and_mpi_launches(alone):
    from dp_cli import console
    from dp_cli.distributed import is_main_process, world_size

    assert world_size() == 1 and is_main_process()
    alone.setenv("OMPI_COMM_WORLD_SIZE", "3")
    alone.setenv("OMPI_COMM_WORLD_RANK", "2")
    assert world_size() == 3 and not is_main_process()
    alone.setenv("RANK", "0")  # torchrun's RANK first, then MPI's, then LOCAL_RANK
    assert is_main_process()
    alone.delenv("RANK")
    alone.delenv("OMPI_COMM_WORLD_RANK")
    alone.setenv("LOCAL_RANK", "1")
    assert not is_main_process() and console.is_main_process is is_main_process


def test_the_process_state_and_accelerator_go_to_the_cpu_only_when_they_must(alone):
    import accelerate

    from dp_cli import distributed

    seen = []
    alone.setattr(accelerate, "PartialState", lambda **kw: seen.append(("state", kw)))
    alone.setattr(accelerate, "Accelerator", lambda **kw: seen.append(("accelerator", kw)))
    alone.setattr(torch.cuda, "is_available", lambda: False)
    distributed.process_state("auto"), distributed.process_state("cpu"), distributed.make_accelerator(seed=1)
    alone.setenv("WORLD_SIZE", "2")
    distributed.process_state("auto"), distributed.make_accelerator(), distributed.make_accelerator(cpu=False)
    assert [kw.get("cpu") for _, kw in seen] == [False, True, False, True, True, False]
    assert seen[2] == ("accelerator", {"seed": 1, "cpu": False})


def test_every_process_setup_uses_the_one_seam():
    import dp_cli.edit.runner as edit
    import dp_cli.segment.runner as segment
    from dp_cli.distributed import process_state

    assert edit.process_state is process_state and segment.process_state is process_state
    assert segment.pick_device is pick_device and not hasattr(segment, "_Dist")

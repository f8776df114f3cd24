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

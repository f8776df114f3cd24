"""One way to build the Accelerator, so `accelerate launch` and `torchrun` work on CPUs as on GPUs."""

from __future__ import annotations

from typing import Any


def make_accelerator(**kwargs: Any):
    """An `accelerate.Accelerator`; on a machine without a GPU it is told `cpu=True`.

    accelerate only turns `torchrun --nproc_per_node N` into a gloo process group on CPU when asked
    for the CPU explicitly; otherwise every process believes it is alone (and rank 0).
    """
    import torch
    from accelerate import Accelerator

    if "cpu" not in kwargs and not torch.cuda.is_available():
        kwargs["cpu"] = True
    return Accelerator(**kwargs)


def distributed_without_cuda() -> bool:
    """torchrun / accelerate launch on CPUs: accelerate then needs cpu=True to pick gloo (MULTI_CPU)."""
    import os

    import torch

    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def pick_device(name: str | None, state: Any = None) -> str:
    """The one device rule of every command: 'auto' (or nothing) is this process's accelerator when a
    process state is given (torchrun local rank), else cuda, else mps, else cpu; an explicit cuda device
    on a machine without CUDA is a one-line ModelError."""
    import torch

    from dp_cli.errors import ModelError

    if name in (None, "", "auto"):
        if state is not None:
            return str(state.device)
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {name!r}: CUDA is not available here", hint="use --device cpu or auto")
    return name

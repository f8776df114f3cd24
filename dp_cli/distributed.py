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

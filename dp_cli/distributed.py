"""The one runtime seam: launched processes, the main-process check, the process state, the Accelerator and
the device rule, so `accelerate launch`, `torchrun` and MPI work on CPUs as on GPUs, in every command.

accelerate only turns `torchrun --nproc_per_node N` into a gloo process group on CPU when asked for the CPU
explicitly; otherwise every process believes it is alone (and rank 0).
"""

from __future__ import annotations

import os
import sys
from typing import Any

# What the launchers set (torchrun / accelerate launch, then MPI), in the order accelerate reads them.
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "LOCAL_RANK")


def die_with_launcher() -> bool:
    """Under torchrun / `accelerate launch` (TORCHELASTIC_RUN_ID), ask Linux to send this process SIGTERM when
    its launcher dies: a launcher killed outright (kill -9, a lost ssh session) otherwise leaves its workers
    running on, and a rerun would race them for the same output files. SIGTERM then ends the command like
    Ctrl-C (cli_common). Returns whether it was set (False elsewhere: other systems, no launcher)."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGTERM), 0, 0, 0) != 0:  # PR_SET_PDEATHSIG = 1
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() == 1:  # the launcher died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def world_size() -> int:
    """How many processes were launched together (1 when run alone), from the launcher's environment."""
    return max(int(os.environ.get(k) or 1) for k in _WORLD_SIZE_VARS)


def is_main_process() -> bool:
    """True on rank 0 (or when not distributed); read from the environment, so it costs no torch import."""
    rank = next((os.environ[k] for k in _RANK_VARS if k in os.environ), "0")
    return rank in ("0", "")


def distributed_without_cuda() -> bool:
    """Several processes on CPUs: accelerate then needs cpu=True to pick gloo (MULTI_CPU)."""
    import torch

    return not torch.cuda.is_available() and world_size() > 1


def process_state(device: str | None = None):
    """This process's `accelerate.PartialState` (rank, process count, barriers); on the CPU when several
    processes run without CUDA or when `device` is 'cpu'."""
    from accelerate import PartialState

    return PartialState(cpu=distributed_without_cuda() or device == "cpu")


def make_accelerator(**kwargs: Any):
    """An `accelerate.Accelerator`, told `cpu=True` when several processes run without CUDA (unless the
    caller says otherwise)."""
    from accelerate import Accelerator

    kwargs.setdefault("cpu", distributed_without_cuda())
    return Accelerator(**kwargs)


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

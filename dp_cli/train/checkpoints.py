"""`checkpoint-{step}` folders: atomic save of the full accelerate state, rotation, resume lookup."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from dp_cli.errors import ConfigError, DataError
from dp_cli.fsutil import usual_modes

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "dp_state.json"


@dataclass
class RunState:
    """Where a run stands; saved in each checkpoint next to the accelerate state."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # batches (not optimizer steps) of `epoch` already consumed
    samples_seen: int = 0


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Finished checkpoints (step, folder), oldest first; temporary folders are ignored."""
    if not Path(output_dir).is_dir():
        return []
    found = []
    for p in Path(output_dir).iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def to_delete(steps: list[int], new_step: int, *, keep_only_last: bool, keep_interval: int | None,
              total_limit: int | None) -> list[int]:
    """Steps of the existing checkpoints to remove before saving `new_step` (the seed's rotation).

    keep_only_last: only the newest checkpoint survives, except those at multiples of keep_interval.
    Otherwise, with total_limit, the oldest non-interval ones go so that at most total_limit remain.
    """
    def protected(s: int) -> bool:
        return bool(keep_interval) and s % keep_interval == 0

    old = [s for s in sorted(steps) if s != new_step]
    if keep_only_last:
        return [s for s in old if not protected(s)]
    if total_limit is None:
        return []
    removable = [s for s in old if not protected(s)]
    excess = len(old) + 1 - total_limit
    return removable[:max(0, excess)]


def save_checkpoint(accelerator, output_dir: Path, state: RunState, *, keep_only_last: bool,
                    keep_interval: int | None, total_limit: int | None, settings: dict | None = None) -> Path:
    """Write `checkpoint-{step}` atomically (temp folder, then rename); rotate after it is complete.

    All processes must call this (accelerate saves each process's RNG state).
    """
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{state.global_step}"
    tmp = output_dir / f".checkpoint-{state.global_step}.tmp"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        saved = {**asdict(state), "settings": settings} if settings is not None else asdict(state)
        (tmp / STATE_FILE).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
        usual_modes(tmp)
        _fsync_tree(tmp)
        if final.exists():  # a previous run wrote the same step: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        steps = [s for s, _ in list_checkpoints(output_dir)]
        for s in to_delete(steps, state.global_step, keep_only_last=keep_only_last,
                           keep_interval=keep_interval, total_limit=total_limit):
            shutil.rmtree(output_dir / f"checkpoint-{s}", ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def resolve_resume(spec: str | None, output_dir: Path) -> Path | None:
    """'latest' -> newest checkpoint in output_dir (None when there is none yet); a path must be a checkpoint."""
    if not spec:
        return None
    if spec == "latest":
        found = list_checkpoints(output_dir)
        return found[-1][1] if found else None
    path = Path(spec)
    if not path.is_dir():
        raise ConfigError(f"resume_from_checkpoint: {path} not found",
                          hint=f"use 'latest', or a checkpoint folder of {output_dir}: {_names(output_dir)}")
    if not (path / STATE_FILE).exists():
        raise DataError(f"{path}: not a dp checkpoint (no {STATE_FILE})",
                        hint=f"use 'latest', or a checkpoint folder of {output_dir}: {_names(output_dir)}")
    return path


def read_state(checkpoint: Path) -> RunState:
    """The RunState saved in a checkpoint."""
    path = Path(checkpoint) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunState(**{k: int(data[k]) for k in asdict(RunState())})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable run state ({exc})", hint="resume from another checkpoint") from None


def read_settings(checkpoint: Path) -> dict | None:
    """The settings a checkpoint was trained with (`save_checkpoint(settings=...)`); None for a checkpoint
    written before they were saved, or unreadable ones (read_state reports those)."""
    try:
        data = json.loads((Path(checkpoint) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    settings = data.get("settings") if isinstance(data, dict) else None
    return settings if isinstance(settings, dict) else None


def _names(output_dir: Path) -> str:
    names = [p.name for _, p in list_checkpoints(output_dir)]
    return ", ".join(names) if names else "(none yet)"

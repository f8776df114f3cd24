"""Resolve a model reference (local folder or hub id) and turn loading failures into ModelError."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

from dp_cli.errors import ModelError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SD_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_ref(ref: str | os.PathLike, what: str) -> tuple[str, bool]:
    """(reference, is_local): an existing folder, or a hub id 'owner/name'; anything else is a ModelError."""
    s = str(ref)
    p = Path(os.path.expanduser(s))
    if p.is_dir():
        return str(p), True
    if p.exists():
        raise ModelError(f"{what} {s} is a file, not a model folder", hint="give the folder that holds the model")
    if _HUB_ID.match(s) and not s.startswith((".", "/", "~")):
        return s, False
    raise ModelError(f"{what} folder {s} does not exist", hint="give an existing folder or a hub id like owner/name")


def require_parts(folder: str, parts: tuple[str, ...], what: str, hint: str) -> None:
    """Every missing part of a local model folder in one ModelError."""
    missing = [p for p in parts if not (Path(folder) / p).exists()]
    if missing:
        raise ModelError(f"{what} {folder} is incomplete: missing {', '.join(missing)}", hint=hint)


@contextmanager
def model_errors(ref: str, what: str):
    """Turn the OSError/ValueError family of from_pretrained into one-line ModelErrors."""
    try:
        yield
    except ModelError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if Path(os.path.expanduser(str(ref))).is_dir():  # a local folder: its files are the problem
            hint = f"{what} in that folder is damaged or incomplete: copy or save the whole model folder again"
        elif hub_offline():
            hint = ("HF_HUB_OFFLINE is set: the model must already be in the local Hugging Face cache, "
                    "or give a local folder")
        else:
            hint = "check the hub id or give a local folder"
        raise ModelError(f"cannot load {what} from {ref}: {first}", hint=hint) from exc

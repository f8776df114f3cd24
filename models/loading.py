"""Resolve a model reference (local folder or hub id) and turn loading failures into ModelError."""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path

from dp_cli.errors import ModelError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SD_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def is_hub_id(ref: str | os.PathLike) -> bool:
    """Shaped like a hub id 'owner/name' (not a relative or absolute path); says nothing of existence."""
    s = str(ref)
    return bool(_HUB_ID.match(s)) and not s.startswith((".", "/", "~"))


def resolve_ref(ref: str | os.PathLike, what: str) -> tuple[str, bool]:
    """(reference, is_local): an existing folder, or a hub id 'owner/name'; anything else is a ModelError."""
    s = str(ref)
    p = Path(os.path.expanduser(s))
    if p.is_dir():
        return str(p), True
    if p.exists():
        raise ModelError(f"{what} {s} is a file, not a model folder", hint="give the folder that holds the model")
    if is_hub_id(s):
        return s, False
    raise ModelError(f"{what} folder {s} does not exist", hint="give an existing folder or a hub id like owner/name")


def checked_ref(ref: str | os.PathLike, what: str, revision: str | None = None) -> tuple[str, bool]:
    """The one check before any from_pretrained: `resolve_ref`, then, for a hub id, `ensure_hub_reachable`.
    When the hub cannot be reached but the model is in the local Hugging Face cache (a cluster node without
    internet), its cached snapshot folder is used instead, as (folder, True)."""
    ref, local = resolve_ref(ref, what)
    if local:
        return ref, True
    try:
        ensure_hub_reachable(ref, what)
    except ModelError as exc:
        snapshot = cached_snapshot(ref, revision)
        if snapshot is None:
            raise ModelError(exc.message, hint=f"it is not in the local Hugging Face cache either: download it where "
                                            f"there is internet (`hf download {ref}`), then copy that cache (HF_HOME) "
                                            "or the model folder here, or pass a local model folder") from None
        logging.getLogger("dp").warning("the Hugging Face hub cannot be reached: %s %s comes from the local cache "
                                        "(%s)", what, ref, snapshot)
        return snapshot, True
    return ref, False


def cached_snapshot(ref: str, revision: str | None = None) -> str | None:
    """The local Hugging Face cache's snapshot folder of hub id `ref` (at `revision`), or None."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(ref, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - LocalEntryNotFoundError, a broken cache entry: not cached
        return None


OFFLINE_HINT = "check the network (or HF_ENDPOINT), or pass a local model folder"
_REACHABLE: dict[str, bool] = {}  # hub endpoint -> answered the probe (once per process)


def quiet_hub_logging() -> None:
    """The hub client's retry/warning lines ('Retrying in 8s [Retry 4/5]') only when the application asks for
    detail: `dp --verbose` sets the `dp` logger to DEBUG (dp_cli/app.py); a library user sets it likewise."""
    if logging.getLogger("dp").isEnabledFor(logging.DEBUG):
        return
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()


def probe_timeout() -> float:
    """Seconds to wait for the hub to answer: HF_HUB_ETAG_TIMEOUT when set, else 10."""
    try:
        return max(0.5, float(os.environ.get("HF_HUB_ETAG_TIMEOUT", "") or 10))
    except ValueError:
        return 10.0


def ensure_hub_reachable(ref: str, what: str) -> None:
    """Before loading hub id `ref`: one quick request to the hub endpoint, so that an unreachable hub fails in
    seconds with one ModelError instead of half a minute of the hub client's retries (which fall back to the
    cache only afterwards). Nothing is checked with HF_HUB_OFFLINE set; any HTTP answer counts as reachable."""
    quiet_hub_logging()
    if hub_offline():
        return
    from huggingface_hub import constants

    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or constants.ENDPOINT
    if endpoint not in _REACHABLE:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"{endpoint}/api/models/{ref}", method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=probe_timeout()):
                pass
            _REACHABLE[endpoint] = True
        except urllib.error.HTTPError:  # 401/404/...: the hub answered; from_pretrained says what is wrong
            _REACHABLE[endpoint] = True
        except (OSError, ValueError):  # refused, no route, DNS, timeout, malformed HF_ENDPOINT
            _REACHABLE[endpoint] = False
    if not _REACHABLE[endpoint]:
        raise ModelError(f"cannot load {what} {ref}: the Hugging Face hub ({endpoint}) cannot be reached",
                         hint=OFFLINE_HINT)


def float32_kwargs(kwargs: dict) -> dict:
    """kwargs for a transformers from_pretrained that loads float32 weights as diffusers does: transformers 5
    reads the dtype from config.json by default ("auto"), so a checkpoint saved from an fp16 pipeline would
    give an fp16 text or vision encoder. A dtype the caller passes wins."""
    if "dtype" in kwargs or "torch_dtype" in kwargs:
        return kwargs
    import torch
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:  # 4.x loads float32 unless told otherwise
        return kwargs
    return {**kwargs, "dtype": torch.float32}


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

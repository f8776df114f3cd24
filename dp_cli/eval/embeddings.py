"""Embeddings for retrieval: CLIP (transformers) over a person dataset split, or files users bring.

Embedding files (one per side: queries = captions, gallery = images):
- `NAME.safetensors` with tensors `embeddings` (N, D, float) and `ids` (N, integer person ids);
- `NAME.npy` (N, D) with a sidecar of person ids, one per row: `NAME.ids.txt` (one id per line),
  `NAME.ids.json` (a JSON list) or `NAME.ids.npy`; ids may be integers or strings (`person_ids`: the same
  value whichever file holds them);
- `NAME.npz` with arrays `embeddings` and `ids`.
Rows need not be normalised; dp L2-normalises them.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from dp_cli.errors import DataError, ModelError

ProgressFn = Callable[[int], None]
ID_SIDECARS = (".ids.txt", ".ids.json", ".ids.npy")
# what np.load raises on a damaged .npy/.npz: bad header, object arrays, truncated data, broken zip members
_NUMPY_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
_NUMPY_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}  # np.save's header; np.savez writes a zip archive
_NUMPY_HINT = {".npy": "write it with numpy.save; numeric or string arrays, not dtype=object",
               ".npz": "write it with numpy.savez(path, embeddings=..., ids=...); not dtype=object"}


@dataclass
class EmbeddingSet:
    """Text queries and image gallery of one split, with person ids and record keys."""

    query_emb: np.ndarray  # (Q, D) float32, one row per caption
    query_ids: list  # person id of each caption
    gallery_emb: np.ndarray  # (G, D) float32, one row per image
    gallery_ids: list
    query_keys: list[str]  # "<record id>#<caption index>"
    gallery_keys: list[str]  # record id


# ----------------------------------------------------------------------------- files


def load_embeddings(path: str | Path) -> tuple[np.ndarray, list]:
    """Read an embedding file (.safetensors, .npy + ids sidecar, .npz) -> (float32 (N, D), ids)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: embedding file not found")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        emb, ids = _load_safetensors(path)
    elif suffix == ".npz":
        emb, ids = _load_npz(path)
    elif suffix == ".npy":
        emb, ids = _load_numpy(path), _load_sidecar(path)
    else:
        raise DataError(f"{path}: unknown embedding file type {suffix!r}",
                        hint="use .safetensors (embeddings + ids), .npz, or .npy with a NAME.ids.txt sidecar")
    return _check_embeddings(path, np.asarray(emb), person_ids(path, list(ids)))


def load_embedding_pair(queries: str | Path, gallery: str | Path) -> tuple[np.ndarray, list, np.ndarray, list]:
    """Read the query and gallery embedding files -> (query emb, query ids, gallery emb, gallery ids); both
    sides must have the same embedding size, as one model gives."""
    q_emb, q_ids = load_embeddings(queries)
    g_emb, g_ids = load_embeddings(gallery)
    if q_emb.shape[1] != g_emb.shape[1]:
        raise DataError(f"embedding sizes differ: {queries} has {q_emb.shape[1]} values per row, {gallery} has "
                        f"{g_emb.shape[1]}", hint="embed queries and gallery with the same model")
    if not set(q_ids) & set(g_ids):  # every query would be left out: metrics of nothing, not zeros
        raise DataError(f"no person id of {queries} is in {gallery} (e.g. {_sample(q_ids)} against "
                        f"{_sample(g_ids)})", hint="both files must name persons with the same ids")
    return q_emb, q_ids, g_emb, g_ids


def _sample(ids: list) -> str:
    return ", ".join(repr(i) for i in list(dict.fromkeys(ids))[:3])


def _load_numpy(path: Path) -> Any:
    """np.load without pickles (an ndarray, or an NpzFile for .npz); a file NumPy cannot read is a DataError."""
    kind = path.suffix.lower()
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_NUMPY_MAGIC[kind]))
        if head != _NUMPY_MAGIC[kind]:
            what = "it is empty" if not head else "no .npy header" if kind == ".npy" else "not a zip archive"
            raise DataError(f"{path}: not a NumPy {kind} file ({what})", hint=_NUMPY_HINT[kind])
        return np.load(path, allow_pickle=False)
    except _NUMPY_ERRORS as exc:
        raise DataError(f"{path}: not a readable NumPy {kind} file ({_reason(exc)})", hint=_NUMPY_HINT[kind]) from None


def _load_npz(path: Path) -> tuple[np.ndarray, list]:
    with _load_numpy(path) as data:
        missing = [k for k in ("embeddings", "ids") if k not in data.files]
        if missing:
            found = ", ".join(sorted(data.files)) or "none"
            raise DataError(f"{path}: missing array(s) {', '.join(missing)} (found {found})",
                            hint="numpy.savez(path, embeddings=(N, D) array, ids=(N,) array)")
        try:
            return data["embeddings"], data["ids"].reshape(-1).tolist()
        except _NUMPY_ERRORS as exc:
            raise DataError(f"{path}: cannot read its arrays ({_reason(exc)})", hint=_NUMPY_HINT[".npz"]) from None


def _reason(exc: BaseException) -> str:
    """The first line of what NumPy / the OS said (an OSError without the path it would repeat)."""
    text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def _load_safetensors(path: Path) -> tuple[np.ndarray, list]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        data = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc})") from None
    missing = [k for k in ("embeddings", "ids") if k not in data]
    if missing:
        raise DataError(f"{path}: missing tensor(s) {', '.join(missing)} (found {', '.join(sorted(data)) or 'none'})",
                        hint="save tensors named 'embeddings' (N, D) and 'ids' (N,)")
    return data["embeddings"], data["ids"].reshape(-1).tolist()


def _sidecar_paths(path: Path) -> list[Path]:
    stem = path.with_suffix("")
    return [stem.with_name(stem.name + s) for s in ID_SIDECARS]


def _load_sidecar(path: Path) -> list:
    for side in _sidecar_paths(path):
        if not side.exists():
            continue
        if side.name.endswith(".npy"):
            return _load_numpy(side).reshape(-1).tolist()
        text = _read_text(side)
        if side.name.endswith(".txt"):
            return [line.strip() for line in text.splitlines() if line.strip()]
        return _json_ids(side, text)
    names = ", ".join(p.name for p in _sidecar_paths(path))
    raise DataError(f"{path}: no person ids beside it (looked for {names})",
                    hint="write one person id per row to NAME.ids.txt")


def _read_text(side: Path) -> str:
    try:
        return side.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{side}: not UTF-8 text (byte {exc.start})", hint="save the ids as UTF-8") from None
    except OSError as exc:
        raise DataError(f"{side}: cannot read ({exc.strerror or exc})") from None


def _json_ids(side: Path, text: str) -> list:
    try:
        ids = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{side}: malformed JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(ids, list):
        raise DataError(f"{side}: expected a JSON list of person ids", hint='write e.g. [3, 3, 7] or ["a", "b"]')
    bad = next((i for i, v in enumerate(ids) if isinstance(v, bool) or not isinstance(v, (int, str))), None)
    if bad is not None:
        raise DataError(f"{side}: entry {bad} is {json.dumps(ids[bad])[:40]}, not an integer or a string",
                        hint="list one integer or string id per embedding row")
    return ids


_INT = re.compile(r"-?(0|[1-9][0-9]*)")  # an integer as Python writes it: "7", "-3"; not "007", "+7", "7.0"


def person_ids(path: Path, ids: list) -> list:
    """The ids of an embedding file as ints or strings, the same value whichever file type held them: a
    whole-number float (a float .npy or .safetensors) and a string that spells an integer ("7" in a .txt or
    JSON list) become ints; other strings stay as written ("007" is not "7"); fractions are refused."""
    out = []
    for k, v in enumerate(ids):
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if isinstance(v, float):
            if not v.is_integer():
                raise DataError(f"{path}: id {k} is {v}, not a whole number",
                                hint="person ids are integers or strings, one per row")
            v = int(v)
        elif isinstance(v, str) and _INT.fullmatch(v):
            v = int(v)
        elif isinstance(v, bool) or not isinstance(v, (int, str)):
            raise DataError(f"{path}: id {k} is {v!r}, not an integer or a string",
                            hint="person ids are integers or strings, one per row")
        out.append(v)
    return out


def _check_embeddings(path: Path, emb: np.ndarray, ids: list) -> tuple[np.ndarray, list]:
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise DataError(f"{path}: embeddings must be a non-empty (N, D) array, got shape {emb.shape}",
                        hint="save one row of D values per caption or image")
    if emb.dtype.kind not in "fiu":
        raise DataError(f"{path}: embeddings must be numeric, got dtype {emb.dtype}", hint="save float embeddings")
    if len(ids) != emb.shape[0]:
        raise DataError(f"{path}: {emb.shape[0]} embedding rows but {len(ids)} ids", hint="give one id per row")
    emb = emb.astype(np.float32, copy=False)
    if not np.isfinite(emb).all():
        bad = int(np.flatnonzero(~np.isfinite(emb).all(1))[0])
        raise DataError(f"{path}: row {bad} holds NaN or infinite values", hint="re-embed that item or drop it")
    return emb, ids


def save_embeddings(path: str | Path, emb, ids: Sequence) -> list[Path]:
    """Write an embedding file: .safetensors (integer ids) or .npy + NAME.ids.txt; returns the files."""
    from dp_cli.fsutil import atomic_path, write_text_atomic

    path = Path(path)
    emb = np.ascontiguousarray(np.asarray(emb, dtype=np.float32))
    ids = list(ids)
    if len(ids) != emb.shape[0]:
        raise ValueError(f"{len(ids)} ids for {emb.shape[0]} embedding rows")
    if path.suffix.lower() == ".safetensors":
        if not all(isinstance(i, (int, np.integer)) for i in ids):
            raise DataError(f"{path}: safetensors ids must be integers", hint="use a .npy path for string ids")
        from safetensors.numpy import save_file

        with atomic_path(path) as tmp:
            save_file({"embeddings": emb, "ids": np.asarray(ids, dtype=np.int64)}, str(tmp))
        return [path]
    if path.suffix.lower() != ".npy":
        raise DataError(f"{path}: embedding files end in .safetensors or .npy")
    side = _sidecar_paths(path)[0]
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, emb)
    write_text_atomic(side, "".join(f"{i}\n" for i in ids))
    return [path, side]


# ----------------------------------------------------------------------------- CLIP


def resolve_device(device: str | None) -> str:
    """'auto' (or nothing) -> cuda, mps or cpu, as every command (dp_cli.distributed.pick_device)."""
    from dp_cli.distributed import pick_device

    return pick_device(device)


def load_clip(model_ref: str, device: str | None = None) -> tuple[Any, Any]:
    """A CLIPModel in eval mode on `device` and its tokenizer (`load_clip_parts`)."""
    model, tokenizer = load_clip_parts(model_ref)
    return model.to(resolve_device(device)).eval(), tokenizer


def load_clip_parts(model_ref: str) -> tuple[Any, Any]:
    """A CLIPModel and its tokenizer from a hub id, a local folder or the hub id's cached snapshot: the one
    CLIP loader of eval and the baseline (errors are one-line ModelErrors)."""
    from transformers import AutoTokenizer, CLIPModel

    from dp_models.loading import model_errors

    ref = check_clip_ref(model_ref)
    with model_errors(ref, "CLIP model and tokenizer"):
        return CLIPModel.from_pretrained(ref), AutoTokenizer.from_pretrained(ref)


def check_clip_ref(model_ref: str) -> str:
    """A CLIP model reference that is an existing folder or a reachable hub id (HF_HUB_OFFLINE respected);
    a local path that does not exist says so (not "Repo id must be in the form ...")."""
    from dp_models.loading import checked_ref

    try:
        return checked_ref(model_ref, "CLIP model")[0]
    except ModelError as exc:
        raise ModelError(f"{model_ref}: cannot load a CLIP model: {exc.message}", hint=exc.hint) from None


def preprocess_images(images: Sequence, size: Sequence[int], mean: Sequence[float], std: Sequence[float]):
    """PIL images (or paths) -> normalised float tensor (B, 3, H, W); resized directly to `size` (H, W)."""
    import torch
    from PIL import Image

    from dp_cli.data.images import to_clip_pixels

    return torch.stack([to_clip_pixels(im if isinstance(im, Image.Image) else _open_image(im), size, mean, std)
                        for im in images])


def _open_image(path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return im
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None


def _features(out) -> Any:
    """transformers 5 returns an output with pooler_output; 4.x returns the tensor."""
    return out if hasattr(out, "shape") else out.pooler_output


def embed_images(model, images: Sequence, size: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 batch_size: int = 64, progress: ProgressFn | None = None) -> np.ndarray:
    """CLIP image embeddings (projected, L2-normalised) of PIL images or paths, float32 (N, D)."""
    import torch

    device = next(model.parameters()).device
    native = model.config.vision_config.image_size
    interpolate = tuple(int(s) for s in size) != (native, native)
    outs = []
    for lo in range(0, len(images), batch_size):
        batch = images[lo: lo + batch_size]
        pixels = preprocess_images(batch, size, mean, std).to(device)
        with torch.inference_mode():
            kwargs = {"interpolate_pos_encoding": True} if interpolate else {}
            feats = _features(model.get_image_features(pixel_values=pixels, **kwargs))
        outs.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
        if progress:
            progress(len(batch))
    return np.concatenate(outs) if outs else np.zeros((0, model.config.projection_dim), np.float32)


def embed_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 64, max_length: int = 77,
                progress: ProgressFn | None = None) -> np.ndarray:
    """CLIP text embeddings (projected, L2-normalised) of captions, float32 (N, D); long ones truncated."""
    import torch

    device = next(model.parameters()).device
    max_length = min(max_length, model.config.text_config.max_position_embeddings)
    outs = []
    for lo in range(0, len(texts), batch_size):
        batch = list(texts[lo: lo + batch_size])
        enc = tokenizer(batch, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            feats = _features(model.get_text_features(input_ids=enc["input_ids"].to(device),
                                                      attention_mask=enc["attention_mask"].to(device)))
        outs.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
        if progress:
            progress(len(batch))
    return np.concatenate(outs) if outs else np.zeros((0, model.config.projection_dim), np.float32)


def embed_dataset(model, tokenizer, dataset, split: str = "test", size: Sequence[int] = (384, 128),
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None, batch_size: int = 64,
                  max_length: int = 77, progress: ProgressFn | None = None) -> EmbeddingSet:
    """Embed every caption (queries) and image (gallery) of a split of a PersonDataset with CLIP."""
    from dp_cli.eval.config import CLIP_MEAN, CLIP_STD

    records = dataset.split(split)
    if not records:
        have = ", ".join(sorted({r.split for r in dataset.records})) or "none"
        raise DataError(f"{dataset.root}: no records in split {split!r} (splits present: {have})",
                        hint="choose another split with --split")
    captions = [(f"{r.id}#{i}", c, r.person_id) for r in records for i, c in enumerate(r.captions)]
    gallery = embed_images(model, [dataset.image_path(r) for r in records], size, mean or CLIP_MEAN,
                           std or CLIP_STD, batch_size, progress)
    queries = embed_texts(model, tokenizer, [c for _, c, _ in captions], batch_size, max_length, progress)
    return EmbeddingSet(query_emb=queries, query_ids=[p for _, _, p in captions], gallery_emb=gallery,
                        gallery_ids=[r.person_id for r in records], query_keys=[k for k, _, _ in captions],
                        gallery_keys=[r.id for r in records])


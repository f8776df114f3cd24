"""Training examples from a person dataset with parsing maps (DESIGN.md section 1, "Training").

For each image: a caption, the attribute nouns it names (for the configured types) that also have a
mask in the parsing map, one reference image per such attribute (its bounding box, pixels outside the
mask replaced by noise), the masks at training resolution and the token position of each noun.
Images without usable attributes still train the denoiser. All randomness of an example comes from
(seed, epoch, index), so a resumed run sees exactly the examples an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info

from dp_cli.data.attributes import NounMatch, attribute_mask, drop_adjectives, find_nouns
from dp_cli.data.dataset import PersonDataset, PersonRecord
from dp_cli.data.images import LABEL_MODES, load_parsing, load_rgb, to_vae_pixels
from dp_cli.data.reference import TRAIN_AUGMENT, Augment, training_reference
from dp_cli.errors import DataError

MIN_ATTRIBUTE_PIXELS = 8  # at training resolution; smaller regions give no usable reference
# What an example reads again every epoch, kept by a training process that loads its own batches (not by
# DataLoader workers, which load beside the step anyway), up to these bounds: decoded images and parsing maps
# (about a fifth of the loading on the toy world) and tokenized captions (another fifth)
DECODED_CACHE_BYTES = 512 * 2**20
TOKEN_CACHE_ENTRIES = 100_000


@dataclass
class ReferenceSpec:
    """How the image encoder wants its reference images (dp_models.image_encoder.ReferenceImageEncoder)."""

    size: int
    mean: Sequence[float]
    std: Sequence[float]


@dataclass
class ScanReport:
    """What the pre-scan of the split found."""

    records: list[PersonRecord]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (record id, reason)
    without_parsing: int = 0


def scan_split(dataset: PersonDataset, split: str, *, strict: bool, need_parsing: bool) -> ScanReport:
    """Keep the records whose files open; count (or, strict, fail on) the missing and corrupt ones."""
    records = dataset.split(split)
    if not records:
        have = ", ".join(f"{k} ({v['images']})" for k, v in dataset.counts().items()) or "none"
        raise DataError(f"{dataset.root}: no images in split {split!r}", hint=f"splits present: {have}")
    report = ScanReport([])
    for rec in records:
        problem = _file_problem(dataset.image_path(rec)) or (
            _file_problem(dataset.parsing_path(rec), label_map=True) if rec.parsing else None)
        if problem:
            if strict:
                raise DataError(f"{dataset.root}: record {rec.id!r}: {problem}",
                                hint="fix or remove the file, or run without --strict to skip it")
            report.skipped.append((rec.id, problem))
            continue
        report.without_parsing += rec.parsing is None
        report.records.append(rec)
    if not report.records:
        raise DataError(f"{dataset.root}: every image of split {split!r} is missing or corrupt "
                        f"(first: {report.skipped[0][1]})")
    if need_parsing and report.without_parsing == len(report.records):
        raise DataError(f"{dataset.root}: no parsing maps in split {split!r}, but the localization/mask loss needs them",
                        hint="add parsing maps with `dp segment`, or train with --no-attribute-loc --no-mask-loss")
    return report


def _file_problem(path: Path | None, label_map: bool = False) -> str | None:
    if path is None or not path.exists():
        return f"file not found: {path}"
    try:
        with Image.open(path) as im:
            mode = im.mode
            im.verify()
    except Exception as exc:  # PIL raises many types for broken files
        return f"corrupt image {path}: {exc.__class__.__name__}"
    if label_map and mode not in LABEL_MODES:
        return f"parsing map {path}: mode {mode} is not a label map (single-channel PNG of label ids)"
    return None


class TrainDataset(Dataset):
    """Examples in the training-batch layout of docs/MODELS.md (one image each; stacked by default_collate)."""

    def __init__(self, dataset: PersonDataset, records: list[PersonRecord], tokenizer, *, types: tuple[str, ...],
                 size: tuple[int, int], max_attributes: int, reference: ReferenceSpec, seed: int = 0,
                 caption_augmentation: bool = True, caption_augmentation_prob: float = 0.5,
                 uncondition_prob: float = 0.0, random_flip: bool = False, strict: bool = False,
                 max_length: int | None = None, latent_cache: torch.Tensor | None = None,
                 reference_augmentation: bool = False):
        self.dataset, self.records, self.tokenizer = dataset, records, tokenizer
        self.types, self.size, self.max_attributes, self.reference = types, size, max_attributes, reference
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()  # seen by persistent loader workers
        self.caption_augmentation, self.caption_augmentation_prob = caption_augmentation, caption_augmentation_prob
        self.uncondition_prob, self.random_flip, self.strict = uncondition_prob, random_flip, strict
        self.max_length = max_length or tokenizer.model_max_length
        self.latent_cache = latent_cache
        self.augment = TRAIN_AUGMENT if reference_augmentation else Augment()
        self._paths: dict[int, tuple[Path, Path | None]] = {}  # resolving follows links: once per record
        self._decoded: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self._decoded_bytes, self._decoded_budget = 0, DECODED_CACHE_BYTES
        self._tokens: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._token_budget = TOKEN_CACHE_ENTRIES

    def __len__(self) -> int:
        return len(self.records)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Before an epoch's iterator is made; in shared memory, so persistent DataLoader workers (which keep
        their copy of the dataset from one epoch to the next) draw that epoch's examples too."""
        self._epoch.fill_(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Example `index`, or the next readable one; `skipped` names (newline-separated) the records found
        unreadable on the way, so the count reaches the main process from DataLoader workers too."""
        skipped: list[str] = []
        for attempt in range(len(self.records)):
            i = (index + attempt) % len(self.records)
            try:
                return {**self.example(i), "skipped": "\n".join(skipped)}
            except (OSError, ValueError, DataError) as exc:
                rec = self.records[i]
                if self.strict:
                    raise DataError(f"{self.dataset.root}: record {rec.id!r}: cannot read: {exc}") from None
                skipped.append(rec.id)
        raise DataError(f"{self.dataset.root}: no readable image left")

    def example(self, i: int) -> dict[str, torch.Tensor]:
        """One example; its randomness is a function of (seed, epoch, i)."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        rec = self.records[i]
        image, parsing = self.decoded(i)
        flip = self.random_flip and rng.random() < 0.5
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            parsing = parsing[:, ::-1] if parsing is not None else None
        caption = rec.captions[int(rng.integers(len(rec.captions)))]
        if rng.random() < self.uncondition_prob:
            caption, parsing = "", None
        caption, attrs = self.attributes(caption, image, parsing, rng)
        input_ids, positions = self.tokenize(caption, [(m.start, m.end) for m, _, _ in attrs])
        cached = self.latent_cache is not None and not flip  # the step reads the latents, not the pixels
        out = self.pack(image, attrs, positions, vae_pixels=not cached)
        out["input_ids"] = input_ids
        out["index"] = torch.tensor(i)
        if cached:
            out["latent_dist"] = self.latent_cache[i]
        return out

    def paths(self, i: int) -> tuple[Path, Path | None]:
        """The image and parsing-map files of record i."""
        if i not in self._paths:
            rec = self.records[i]
            self._paths[i] = (self.dataset.image_path(rec), self.dataset.parsing_path(rec))
        return self._paths[i]

    def decoded(self, i: int) -> tuple[Image.Image, np.ndarray | None]:
        """Record i's RGB image and parsing map, decoded once while the cache has room (the files are read
        again, and a broken one found, only for records beyond it)."""
        hit = self._decoded.get(i)
        if hit is not None:
            return Image.fromarray(hit[0]), hit[1]
        image, parsing = self.load(*self.paths(i))
        rgb = np.asarray(image)
        size = rgb.nbytes + (parsing.nbytes if parsing is not None else 0)
        if self._decoded_bytes + size <= self._decoded_budget and get_worker_info() is None:
            self._decoded[i] = (rgb, parsing)
            self._decoded_bytes += size
        return image, parsing

    def load(self, image_path: Path, parsing_path: Path | None) -> tuple[Image.Image, np.ndarray | None]:
        """The RGB image and its parsing map at the image's size (data.images' readers, as edit and eval read
        them; a map that is not a label map is unreadable), uint8 when the labels fit (cached per record)."""
        image = load_rgb(image_path)
        parsing = None
        if parsing_path is not None:
            parsing = load_parsing(parsing_path, size=image.size)
            if parsing.size and parsing.min() >= 0 and parsing.max() <= 255:
                parsing = parsing.astype(np.uint8)
        return image, parsing

    def attributes(self, caption: str, image: Image.Image, parsing: np.ndarray | None, rng: np.random.Generator
                   ) -> tuple[str, list[tuple[NounMatch, np.ndarray, Image.Image]]]:
        """(caption, [(noun, mask at training size, reference image)]) for nouns that have a mask."""
        if parsing is None or not caption:
            return caption, []
        chosen: list[tuple[int, NounMatch, np.ndarray, np.ndarray]] = []
        seen: set[str] = set()
        for k, m in enumerate(find_nouns(caption, self.types)):
            if m.type in seen or len(chosen) >= self.max_attributes:
                continue
            full = attribute_mask(parsing, m.type, self.dataset.label_set)
            small = _resize_mask(full, self.size)
            if small.sum() >= MIN_ATTRIBUTE_PIXELS:
                seen.add(m.type)
                chosen.append((k, m, full, small))
        if self.caption_augmentation and chosen:
            drop = [m for _, m, _, _ in chosen
                    if m.phrase_start < m.start and rng.random() < self.caption_augmentation_prob]
            if drop:
                new_caption = drop_adjectives(caption, drop)
                renamed = find_nouns(new_caption, self.types)
                chosen = [(k, renamed[k], full, small) for k, _, full, small in chosen]
                caption = new_caption
        rgb = np.asarray(image) if chosen else None  # RGB already (load converts): one array for every crop
        return caption, [(m, small, training_reference(rgb, full, rng, self.augment)) for _, m, full, small in chosen]

    def tokenize(self, caption: str, spans: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        from dp_models.tokens import flag_noun_tokens

        key = (caption, tuple(spans))
        hit = self._tokens.get(key)
        if hit is None:
            ids, pos = flag_noun_tokens(self.tokenizer, [caption], [spans], max_length=self.max_length,
                                        max_attributes=self.max_attributes)
            hit = ids[0], pos[0]
            if len(self._tokens) < self._token_budget and get_worker_info() is None:
                self._tokens[key] = hit
        return hit[0].clone(), hit[1].clone()

    def pack(self, image: Image.Image, attrs: list, positions: torch.Tensor,
             vae_pixels: bool = True) -> dict[str, torch.Tensor]:
        from dp_models.image_encoder import preprocess_reference

        h, w = self.size
        a, s = self.max_attributes, self.reference.size
        masks = torch.zeros(a, h, w)
        valid = torch.zeros(a, dtype=torch.bool)
        refs = torch.zeros(a, 3, s, s)
        if attrs:
            pixels = preprocess_reference([ref for _, _, ref in attrs], s, self.reference.mean, self.reference.std)
            for k, (_, mask, _) in enumerate(attrs):
                if positions[k] < 0:  # the noun was truncated away
                    continue
                masks[k] = torch.from_numpy(mask.astype(np.float32))
                valid[k] = True
                refs[k] = pixels[k]
        positions = torch.where(valid, positions, torch.full_like(positions, -1))
        out = {"token_positions": positions, "ref_pixel_values": refs, "attr_masks": masks, "attr_valid": valid}
        if vae_pixels:
            out["pixel_values"] = to_vae_pixels(image, self.size)
        return out


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if mask.shape == (h, w):
        return mask
    im = Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(im) > 127


class PixelView(Dataset):
    """Only the (unflipped) pixel values of each record: the input of the latent cache."""

    def __init__(self, train: TrainDataset):
        self.train = train

    def __len__(self) -> int:
        return len(self.train)

    def __getitem__(self, i: int) -> torch.Tensor:
        try:
            return to_vae_pixels(load_rgb(self.train.paths(i)[0]), self.train.size)
        except DataError:
            return torch.zeros(3, *self.train.size)  # the example itself is skipped at training time


def cache_key(train: TrainDataset, vae_id: str) -> str:
    """A key that changes when the images, their size or the VAE (`vae_id`: a weight fingerprint) change."""
    h = hashlib.sha256()
    h.update(json.dumps([vae_id, list(train.size)]).encode())
    for rec in train.records:
        st = train.dataset.image_path(rec).stat()
        h.update(f"{rec.id}\0{rec.image}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def encode_latent_dists(vae, train: TrainDataset, batch_size: int, device: torch.device) -> torch.Tensor:
    """[N, 2C, h, w]: mean and log-variance of the VAE posterior of every image, in record order."""
    loader = torch.utils.data.DataLoader(PixelView(train), batch_size=batch_size, shuffle=False)
    out = []
    for pixels in loader:
        dist = vae.encode(pixels.to(device=device, dtype=vae.dtype)).latent_dist
        out.append(torch.cat([dist.mean, dist.logvar], dim=1).float().cpu())
    return torch.cat(out)


def load_or_build_latent_cache(vae, train: TrainDataset, folder: Path, vae_id: str, device: torch.device,
                               batch_size: int = 16) -> tuple[torch.Tensor, Path, bool]:
    """Read the cache file for these images and this VAE, or encode and write it (atomically)."""
    from safetensors.torch import load_file, save_file

    from dp_cli.fsutil import atomic_path

    path = Path(folder) / f"latents-{cache_key(train, vae_id)}.safetensors"
    if path.exists():
        try:
            return load_file(path)["latent_dist"], path, False
        except Exception:  # a damaged cache is rebuilt, never trusted
            path.unlink()
    dists = encode_latent_dists(vae, train, batch_size, device)
    with atomic_path(path) as tmp:
        save_file({"latent_dist": dists.contiguous()}, str(tmp))
    return dists, path, True


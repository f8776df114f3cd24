"""Training items for the retrieval baseline: one (image, caption, person) triple per caption."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from dp_cli.data.dataset import PersonDataset, PersonRecord, resolve_inside
from dp_cli.data.images import CLIP_MEAN, CLIP_STD, to_clip_pixels
from dp_cli.errors import DataError


@dataclass(frozen=True)
class RetrievalItem:
    """One training pair."""

    image: Path
    caption: str
    person_id: int


def items_from_records(root: Path, records: list[PersonRecord]) -> list[RetrievalItem]:
    """Each caption of each image becomes one item (as IRRA does)."""
    return [RetrievalItem(resolve_inside(root, r.image, f"record {r.id!r} image"), c, r.person_id)
            for r in records for c in r.captions]


def train_items(dataset: PersonDataset, generated: list[RetrievalItem] | None = None) -> list[RetrievalItem]:
    """The train split, plus the generated items appended in a fixed order."""
    return items_from_records(dataset.root, dataset.split("train")) + list(generated or [])


def generated_items(generated, dataset: PersonDataset) -> list[RetrievalItem]:
    """Items of `dp_cli.export.GeneratedRecords`: one new person per variant, after the dataset's ids."""
    next_id = max(r.person_id for r in dataset.records) + 1
    variant_ids: dict[str, int] = {}
    items = []
    for rec, variant in zip(generated.records, generated.variants):
        pid = variant_ids.setdefault(variant, next_id + len(variant_ids))
        items.extend(RetrievalItem(generated.sources[rec.id], c, pid) for c in rec.captions)
    return items


def load_image(path: Path, size: tuple[int, int], mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """PIL -> normalised [3, H, W] float tensor (no torchvision)."""
    try:
        with Image.open(path) as im:
            return to_clip_pixels(im, size, mean, std)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None


class RetrievalTrainSet(torch.utils.data.Dataset):
    """Images loaded and normalised on the fly; person ids remapped to 0..N-1."""

    def __init__(self, items: list[RetrievalItem], size: tuple[int, int], flip: bool = True, seed: int = 0):
        self.items = items
        self.size = size
        self.flip = flip
        self.seed = seed
        self.epoch = 0  # set by the trainer each epoch: flips differ per epoch, same for any worker count
        pids = sorted({it.person_id for it in items})
        self.pid_index = {p: i for i, p in enumerate(pids)}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict:
        it = self.items[idx]
        pixels = load_image(it.image, self.size)
        if self.flip and random.Random(self.seed * 1_000_003 + self.epoch * 7_919 + idx).random() < 0.5:
            pixels = pixels.flip(-1)
        return {"pixel_values": pixels, "caption": it.caption, "pid": self.pid_index[it.person_id]}


def make_collate(tokenizer, max_length: int):
    """Collate that tokenizes captions in the batch."""

    def collate(rows: list[dict]) -> dict:
        tok = tokenizer([r["caption"] for r in rows], padding="max_length", truncation=True,
                        max_length=max_length, return_tensors="pt")
        return {"pixel_values": torch.stack([r["pixel_values"] for r in rows]),
                "input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"],
                "pid": torch.tensor([r["pid"] for r in rows], dtype=torch.long)}

    return collate

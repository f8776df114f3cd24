"""A sample sheet of a toy world: persons beside their coloured parsing maps, and catalog items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dp_cli.data.dataset import PersonDataset
from dp_cli.data.formats.native import load_native
from dp_cli.fsutil import read_jsonl

# One distinct colour per ATR label id (0 background is black).
PARSING_COLORS = np.array([
    (0, 0, 0), (128, 0, 0), (255, 128, 0), (0, 85, 85), (220, 30, 60), (255, 0, 255), (0, 0, 200),
    (0, 120, 220), (85, 51, 0), (255, 255, 0), (170, 255, 85), (255, 200, 160), (85, 255, 170),
    (0, 170, 170), (52, 86, 128), (0, 210, 255), (170, 0, 255), (100, 100, 100),
], dtype=np.uint8)


def colorize_parsing(labels: np.ndarray) -> Image.Image:
    """An RGB picture of an ATR label map (ids above 17 show as white)."""
    lut = np.full((256, 3), 255, dtype=np.uint8)
    lut[:len(PARSING_COLORS)] = PARSING_COLORS
    return Image.fromarray(lut[np.asarray(labels, dtype=np.uint8)], "RGB")


def _first_image_per_person(dataset: PersonDataset, count: int):
    seen, out = set(), []
    for rec in dataset.records:
        if rec.person_id not in seen and rec.parsing:
            seen.add(rec.person_id)
            out.append(rec)
        if len(out) == count:
            break
    return out


def sample_sheet(world: PersonDataset | Path | str, persons: int = 12, columns: int = 6,
                 catalog_items: int = 12, gap: int = 6) -> Image.Image:
    """Persons (image | parsing) in a grid, then a row of catalog items with their labels."""
    dataset = world if isinstance(world, PersonDataset) else load_native(Path(world))
    records = _first_image_per_person(dataset, persons)
    if not records:
        raise ValueError(f"{dataset.root}: no records with parsing maps to show")
    first = Image.open(dataset.image_path(records[0]))
    w, h = first.size
    cell_w, rows = 2 * w + gap, -(-len(records) // columns)
    items = _catalog(dataset.root, catalog_items)
    side, text_h = w, 14
    width = columns * (cell_w + gap) + gap
    height = gap + rows * (h + gap) + ((side + text_h + 2 * gap) * -(-len(items) // max(1, width // (side + gap)))
                                       if items else 0)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    for i, rec in enumerate(records):
        x, y = gap + (i % columns) * (cell_w + gap), gap + (i // columns) * (h + gap)
        sheet.paste(Image.open(dataset.image_path(rec)).convert("RGB"), (x, y))
        sheet.paste(colorize_parsing(np.asarray(Image.open(dataset.parsing_path(rec)))), (x + w + gap, y))
    _paste_catalog(sheet, items, gap + rows * (h + gap) + gap, side, text_h, gap)
    return sheet


def _catalog(root: Path, count: int) -> list[tuple[Image.Image, str]]:
    path = root / "catalog" / "catalog.jsonl"
    if count <= 0 or not path.exists():
        return []
    rows = [row for _, row in read_jsonl(path)]
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row)
    picked, k = [], 0
    while len(picked) < min(count, len(rows)):  # round robin over types so every type shows
        for group in by_type.values():
            if k < len(group) and len(picked) < count:
                picked.append(group[k])
        k += 1
    return [(Image.open(root / "catalog" / r["image"]).convert("RGB"), r["label"]) for r in picked]


def _paste_catalog(sheet: Image.Image, items, top: int, side: int, text_h: int, gap: int) -> None:
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    per_row = max(1, (sheet.width - gap) // (side + gap))
    for i, (image, label) in enumerate(items):
        x = gap + (i % per_row) * (side + gap)
        y = top + (i // per_row) * (side + text_h + 2 * gap)
        sheet.paste(image.resize((side, side)), (x, y))
        draw.text((x, y + side + 2), label if len(label) <= side // 6 else label[:side // 6 - 1] + ".",
                  fill=(40, 40, 40), font=font)

"""A contact sheet for looking at results: one row per edited image, original | references | edit."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from dp_cli.edit.manifest import MANIFEST, read_rows
from dp_cli.fsutil import save_image_atomic

GAP = 4


def _fit(im: Image.Image, height: int) -> Image.Image:
    w = max(1, round(im.width * height / im.height))
    return im.convert("RGB").resize((w, height), Image.BICUBIC)


def _open(path: Path, height: int) -> Image.Image:
    try:
        with Image.open(path) as im:
            return _fit(im, height)
    except OSError:  # a missing file shows as a grey tile rather than stopping the sheet
        return Image.new("RGB", (height // 2, height), (128, 128, 128))


def write_contact_sheet(out_dir: Path, target: Path, max_rows: int = 16, row_height: int = 128) -> Path:
    """Write `target` from the first `max_rows` lines of `out_dir`/edits.jsonl; returns the path."""
    rows = read_rows(out_dir / MANIFEST)[:max_rows]
    tiles = []
    for row in rows:
        parts = [_open(Path(row["source_image"]), row_height)]
        parts += [_open(Path(r["image"]), row_height // 2) for r in row.get("reference_attribute_list", [])]
        parts.append(_open(out_dir / row["image"], row_height))
        tiles.append(parts)
    width = max((sum(p.width for p in parts) + GAP * (len(parts) + 1) for parts in tiles), default=row_height)
    sheet = Image.new("RGB", (width, max(1, len(tiles)) * (row_height + GAP) + GAP), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, parts in enumerate(tiles):
        x, y = GAP, GAP + r * (row_height + GAP)
        for i, part in enumerate(parts):
            sheet.paste(part, (x, y + (row_height - part.height) // 2))
            if i == len(parts) - 1:  # frame the edit
                draw.rectangle([x - 1, y - 1, x + part.width, y + part.height], outline=(220, 40, 40))
            x += part.width + GAP
    save_image_atomic(sheet, target)
    return target

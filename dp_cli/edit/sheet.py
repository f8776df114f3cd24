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


def write_contact_sheet(out_dir: Path, target: Path, max_rows: int = 16, row_height: int = 128,
                        captions: dict[str, tuple[str, str]] | None = None) -> Path:
    """Write `target` from the first `max_rows` lines of `out_dir`/edits.jsonl; returns the path.

    With `captions` (id -> (before, after)), each row also shows the description before and after.
    """
    rows = read_rows(out_dir / MANIFEST)[:max_rows]
    text_w = 520 if captions else 0
    tiles = []
    for row in rows:
        parts = [_open(Path(row["source_image"]), row_height)]
        parts += [_open(Path(r["image"]), row_height // 2) for r in row.get("reference_attribute_list", [])]
        parts.append(_open(out_dir / row["image"], row_height))
        tiles.append(parts)
    width = max((sum(p.width for p in parts) + GAP * (len(parts) + 1) for parts in tiles), default=row_height) + text_w
    sheet = Image.new("RGB", (width, max(1, len(tiles)) * (row_height + GAP) + GAP), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, parts in enumerate(tiles):
        x, y = GAP, GAP + r * (row_height + GAP)
        for i, part in enumerate(parts):
            sheet.paste(part, (x, y + (row_height - part.height) // 2))
            if i == len(parts) - 1:  # frame the edit
                draw.rectangle([x - 1, y - 1, x + part.width, y + part.height], outline=(220, 40, 40))
            x += part.width + GAP
        if captions and rows[r]["id"] in captions:
            before, after = captions[rows[r]["id"]]
            _draw_text(draw, (x + GAP, y), text_w - 2 * GAP, row_height, before, after)
    save_image_atomic(sheet, target)
    return target


def _wrap(text: str, chars: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], width: int, height: int, before: str,
               after: str) -> None:
    """Description before (grey) and after (green), wrapped into the row's box."""
    chars, line_h = max(10, width // 6), 11
    x, y = xy
    budget = max(1, height // line_h)
    for text, colour in ((before, (120, 120, 120)), (after, (0, 110, 0))):
        for line in _wrap(text, chars)[:max(1, budget // 2)]:
            draw.text((x, y), line, fill=colour)
            y += line_h

"""A contact sheet for looking at results: one row per edited image, original | references | edit | verdict.

Rows that failed the verifier come first (lowest score first), framed in red; passed edits in green.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from dp_cli.edit.manifest import MANIFEST, read_rows
from dp_cli.fsutil import save_image_atomic

GAP = 4
VERDICT_W = 64
COLOURS = {"passed": (30, 150, 60), "failed": (220, 40, 40), None: (140, 140, 140)}


def verdict_of(row: dict) -> tuple[str | None, float | None]:
    """('passed' | 'failed' | None, score) of a manifest row (None: written before the verifier)."""
    status = row.get("status") if row.get("status") in ("passed", "failed") else None
    score = (row.get("verify") or {}).get("score") if isinstance(row.get("verify"), dict) else None
    return status, score if isinstance(score, (int, float)) else None


def failures_first(rows: list[dict]) -> list[dict]:
    """Failed edits first (lowest score first), then unverified, then passed (lowest score first)."""
    rank = {"failed": 0, None: 1, "passed": 2}
    return sorted(rows, key=lambda r: (rank[verdict_of(r)[0]], verdict_of(r)[1] if verdict_of(r)[1] is not None else 0))


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
    rows = failures_first(read_rows(out_dir / MANIFEST))[:max_rows]
    text_w = (520 if captions else 0) + VERDICT_W
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
        status, score = verdict_of(rows[r])
        for i, part in enumerate(parts):
            sheet.paste(part, (x, y + (row_height - part.height) // 2))
            if i == len(parts) - 1:  # frame the edit in its verdict's colour
                draw.rectangle([x - 2, y - 2, x + part.width + 1, y + part.height + 1], outline=COLOURS[status],
                               width=2)
            x += part.width + GAP
        label = {"passed": "pass", "failed": "FAIL", None: "unverified"}[status]
        draw.text((x + GAP, y + 4), label, fill=COLOURS[status])
        if score is not None:
            draw.text((x + GAP, y + 18), f"{score:.2f}", fill=COLOURS[status])
        x += VERDICT_W
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

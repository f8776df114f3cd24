"""A contact sheet for looking at results: a grid of cells, one per edited image, each showing
original | references | edit, the verdict with its score, and (when given) the description before and after.

Cells run left to right, top to bottom: edits that failed the verifier first (lowest score first), framed
in red; passed edits in green. Text is drawn with a TrueType font (matplotlib's DejaVu Sans when
matplotlib is installed, else Pillow's built-in scalable font) so that spaces survive.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from dp_cli.data.handoff import EditRow
from dp_cli.edit.manifest import MANIFEST, read_rows
from dp_cli.fsutil import save_image_atomic

GAP = 4
PAD = 10  # around each cell
COLUMNS = 4  # cells per grid row: a sheet a person reads at a glance, not one tall column
FONT_SIZE = 15
COLOURS = {"passed": (30, 150, 60), "failed": (220, 40, 40), None: (140, 140, 140)}


def failures_first(rows: list[EditRow]) -> list[EditRow]:
    """Failed edits first (lowest score first), then unverified, then passed (lowest score first)."""
    rank = {"failed": 0, None: 1, "passed": 2}
    return sorted(rows, key=lambda row: (rank[row.verdict], row.score if row.score is not None else 0.0))


def font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font with real word spacing: matplotlib's DejaVu Sans when installed, else Pillow's own."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")  # found without importing matplotlib (slow)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)  # FreeType (Pillow >= 10.1), a bitmap font without FreeType


def _fit(im: Image.Image, height: int) -> Image.Image:
    w = max(1, round(im.width * height / im.height))
    return im.convert("RGB").resize((w, height), Image.BICUBIC)


def _open(path: Path, height: int) -> Image.Image:
    try:
        with Image.open(path) as im:
            return _fit(im, height)
    except OSError:  # a missing file shows as a grey tile rather than stopping the sheet
        return Image.new("RGB", (height // 2, height), (128, 128, 128))


def _line_height(face) -> int:
    box = face.getbbox("Hg")
    return int(box[3] - box[1]) + 5


def write_contact_sheet(out_dir: Path, target: Path, max_rows: int = 16, row_height: int = 128,
                        captions: dict[str, tuple[str, str]] | None = None, columns: int = COLUMNS) -> Path:
    """Write `target` from the first `max_rows` edits of `out_dir`/edits.jsonl (failures first); returns the path.

    Edits are laid out `columns` to a grid row. With `captions` (id -> (before, after)), each cell also
    shows the description before and after.
    """
    rows = failures_first(read_rows(out_dir / MANIFEST))[:max_rows]
    face = font()
    line_h = _line_height(face)
    tiles = []
    for row in rows:
        parts = [_open(Path(row.source_image or ""), row_height)]
        parts += [_open(Path(r.image or ""), row_height // 2) for r in row.references]
        parts.append(_open(out_dir / (row.image or ""), row_height))
        tiles.append(parts)
    # 1. Cell size: the widest strip of images, at least wide enough for a readable line of text.
    strip_w = max((sum(p.width for p in parts) + GAP * (len(parts) - 1) for parts in tiles), default=row_height)
    cell_w = max(strip_w, 300 if captions else 0) + 2 * PAD
    text_lines = 1 + (6 if captions else 0)
    cell_h = row_height + GAP + text_lines * line_h + 2 * PAD
    cols = max(1, min(columns, len(tiles)))
    grid_rows = max(1, -(-len(tiles) // cols))
    sheet = Image.new("RGB", (cols * cell_w + (cols + 1) * GAP, grid_rows * cell_h + (grid_rows + 1) * GAP),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    # 2. One cell per edit, left to right then top to bottom, in failures-first order.
    for n, parts in enumerate(tiles):
        x0 = GAP + (n % cols) * (cell_w + GAP)
        y0 = GAP + (n // cols) * (cell_h + GAP)
        _draw_cell(draw, sheet, rows[n], parts, (x0, y0), (cell_w, cell_h), row_height, face, line_h, captions)
    save_image_atomic(sheet, target)
    return target


def _draw_cell(draw: ImageDraw.ImageDraw, sheet: Image.Image, row: EditRow, parts: list[Image.Image],
               xy: tuple[int, int], size: tuple[int, int], row_height: int, face, line_h: int,
               captions: dict[str, tuple[str, str]] | None) -> None:
    """Images, then the verdict (and score) in its colour, then the descriptions; the edit framed in colour."""
    status, score = row.verdict, row.score
    colour = COLOURS[status]
    x0, y0 = xy
    draw.rectangle([x0, y0, x0 + size[0] - 1, y0 + size[1] - 1], outline=(215, 215, 215))
    x, y = x0 + PAD, y0 + PAD
    for i, part in enumerate(parts):
        sheet.paste(part, (x, y + (row_height - part.height) // 2))
        if i == len(parts) - 1:  # frame the edit in its verdict's colour
            draw.rectangle([x - 3, y - 3, x + part.width + 2, y + part.height + 2], outline=colour, width=3)
        x += part.width + GAP
    y += row_height + GAP + 2
    label = {"passed": "PASS", "failed": "FAIL", None: "unverified"}[status]
    if score is not None:
        label += f"  score {score:.2f}"
    draw.text((x0 + PAD, y), f"{label}   {row.id or ''}", fill=colour, font=face)
    if captions and row.id in captions:
        before, after = captions[row.id]
        _draw_text(draw, (x0 + PAD, y + line_h), size[0] - 2 * PAD, 6 * line_h, before, after, face, line_h)


def _wrap(text: str, width: int, face) -> list[str]:
    """Words of `text` in lines no wider than `width` pixels in `face`."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and face.getlength(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + ([line] if line else [])


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], width: int, height: int, before: str,
               after: str, face, line_h: int) -> None:
    """Description before (grey) and after (green), wrapped into the cell; each gets half the lines."""
    x, y = xy
    budget = max(2, height // line_h)
    for text, colour in ((before, (110, 110, 110)), (after, (0, 110, 0))):
        lines = _wrap(text, width, face)
        keep = lines[:max(1, budget // 2)]
        if len(lines) > len(keep):
            keep[-1] = keep[-1].rstrip(".,;") + " ..."
        for line in keep:
            draw.text((x, y), line, fill=colour, font=face)
            y += line_h

"""The contact sheet: a grid read at a glance, failures first in red, a font that keeps its spaces."""

from __future__ import annotations

import json

from PIL import Image

from dp_cli.edit.sheet import COLOURS, PAD, font, write_contact_sheet


def _edits(folder, verdicts):
    """edits.jsonl with one row per (status, score); every image a flat colour."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for k, (status, score) in enumerate(verdicts):
        src, ref, img = folder / f"src{k}.png", folder / f"ref{k}.png", folder / "images" / f"e{k}.png"
        Image.new("RGB", (32, 64), (200, 200, 0)).save(src)
        Image.new("RGB", (32, 32), (0, 0, 200)).save(ref)
        Image.new("RGB", (32, 64), (0, 200, 200)).save(img)
        rows.append({"id": f"e{k}", "image": f"images/e{k}.png", "source_image": str(src), "status": status,
                     "reference_attribute_list": [{"image": str(ref), "label": "blue hat"}],
                     "verify": {"score": score}})
    (folder / "edits.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_font_keeps_the_space_between_words():
    face = font()
    assert face.getlength("wears a") - face.getlength("wearsa") >= 3
    assert face.getbbox("Hg")[3] - face.getbbox("Hg")[1] >= 12  # readable, not the 10-px bitmap


def test_edits_fill_a_grid_failures_first_in_red(tmp_path):
    verdicts = [("passed", 0.9), ("failed", 0.2), ("passed", 0.8), ("failed", 0.1), ("passed", 0.7), ("passed", 0.6)]
    _edits(tmp_path, verdicts)
    sheet_path = write_contact_sheet(tmp_path, tmp_path / "sheet.png", row_height=64, columns=3,
                                     captions={"e3": ("A man wears a coat.", "A man wears a green coat.")})
    sheet = Image.open(sheet_path).convert("RGB")
    assert sheet.width > sheet.height  # 3 columns x 2 grid rows, not one tall column
    cell_w = (sheet.width - 4 * 4) // 3
    cell_h = (sheet.height - 3 * 4) // 2

    def frame(col: int, row: int) -> tuple[int, int, int]:
        """A pixel on the frame around the edit (the last image of the strip: source 32 + ref 32 + gaps)."""
        x0, y0 = 4 + col * (cell_w + 4) + PAD, 4 + row * (cell_h + 4) + PAD
        return sheet.getpixel((x0 + 32 + 4 + 32 + 4 + 16, y0 - 2))

    # failures_first: e3 (0.1), e1 (0.2), then passed lowest score first: e5, e4, e2, e0.
    assert [frame(0, 0), frame(1, 0)] == [COLOURS["failed"]] * 2
    assert [frame(2, 0), frame(0, 1), frame(1, 1), frame(2, 1)] == [COLOURS["passed"]] * 4
    # the verdict line is drawn in the verdict's colour below the images of the first cell
    label = sheet.crop((4 + PAD, 4 + PAD + 64, 4 + cell_w, 4 + PAD + 64 + 30))
    assert COLOURS["failed"] in {c for _, c in label.getcolors(10000)}

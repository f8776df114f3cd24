"""The demo's outputs for people: a contact sheet PNG and a small self-contained HTML report."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image

from dp_cli.fsutil import write_text_atomic

MAX_ROWS = 24


def _captions(edits_dir: Path) -> dict[str, tuple[str, str]]:
    """id -> (description before, description after)."""
    from dp_cli.edit.manifest import MANIFEST, read_rows
    from dp_cli.export.generated import load_annotations

    after = load_annotations(edits_dir / "annotations.jsonl") if (edits_dir / "annotations.jsonl").exists() else {}
    return {row["id"]: (row.get("base_description", ""), after.get(row["id"], ""))
            for row in read_rows(edits_dir / MANIFEST)}


def write_sheet(edits_dir: Path, target: Path) -> Path:
    """Original | references | edited, with the description before and after under each row."""
    from dp_cli.edit.sheet import write_contact_sheet

    return write_contact_sheet(edits_dir, target, max_rows=MAX_ROWS, captions=_captions(edits_dir))


def _data_uri(path: Path, height: int = 128) -> str:
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w = max(1, round(im.width * height / im.height))
            im = im.resize((w, height), Image.NEAREST)
    except OSError:
        return ""
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_html_report(result, target: Path) -> Path:
    """One self-contained page: the summary table and one row per edit (images inlined)."""
    from dp_cli.edit.manifest import MANIFEST, read_rows

    edits_dir = result.out / "edits"
    captions = _captions(edits_dir)
    summary = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                      for k, v in result.rows())
    rows = []
    for row in read_rows(edits_dir / MANIFEST)[:MAX_ROWS]:
        refs = "".join(f'<figure><img src="{_data_uri(Path(r["image"]), 64)}"><figcaption>{html.escape(r["type"])}: '
                       f'{html.escape(r["label"])}</figcaption></figure>'
                       for r in row.get("reference_attribute_list", []))
        before, after = captions.get(row["id"], ("", ""))
        rows.append(f'<tr><td><img src="{_data_uri(Path(row["source_image"]))}"></td><td>{refs}</td>'
                    f'<td><img src="{_data_uri(edits_dir / row["image"])}"></td>'
                    f'<td><p class="before">{html.escape(before)}</p><p class="after">{html.escape(after)}</p></td></tr>')
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dp demo</title><style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}}
img{{image-rendering:pixelated}} figure{{display:inline-block;margin:2px;text-align:center;font-size:80%}}
.before{{color:#888}} .after{{color:#060}}</style></head><body>
<h1>dp demo: Diverse Person on the toy world</h1>
<p>Fresh toy persons (never seen in training) edited with catalog attributes by the toy model, described
anew, exported as {html.escape(result.export.format)} and measured. Grey: description before; green: after.</p>
<h2>Summary</h2><table>{summary}</table>
<h2>Edits</h2><table><tr><th>original</th><th>references</th><th>edited</th><th>description</th></tr>
{''.join(rows)}</table></body></html>
"""
    write_text_atomic(target, page)
    return target

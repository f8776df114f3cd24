"""A self-contained HTML report of any edit run: one row per edit, pass / fail with the verifier's score,
failures first (used by `dp demo` and `dp eval edits --report`)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Iterable

from PIL import Image

from dp_cli.data.handoff import EditRow
from dp_cli.fsutil import write_text_atomic

STYLE = """body{font-family:sans-serif;margin:2em;color:#222} table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}
img{image-rendering:pixelated} figure{display:inline-block;margin:2px;text-align:center;font-size:80%}
.before{color:#888} .after{color:#060} .failed{background:#fde8e8} .passed{background:#eaf7ec}
.verdict{font-weight:bold;white-space:nowrap}"""


def captions_of(edits_dir: Path) -> dict[str, tuple[str, str]]:
    """id -> (description before, description after) from edits.jsonl and annotations.jsonl beside it."""
    from dp_cli.data.handoff import read_descriptions
    from dp_cli.edit.manifest import MANIFEST, read_rows

    notes = edits_dir / "annotations.jsonl"
    after = read_descriptions(notes) if notes.exists() else {}
    return {row.id: (row.base_description or "", after.get(row.id, "")) for row in read_rows(edits_dir / MANIFEST)}


def data_uri(path: Path, height: int = 128) -> str:
    """A PNG data URI of the image scaled to `height` (empty when it cannot be read)."""
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


def _verdict_cell(row: EditRow) -> str:
    text = {"passed": "pass", "failed": "FAIL", None: "unverified"}[row.verdict]
    score_txt = f"<br>{row.score:.2f}" if row.score is not None else ""
    return f'<td class="verdict">{text}{score_txt}</td>'


def _row(row: EditRow, edits_dir: Path, captions: dict[str, tuple[str, str]]) -> str:
    refs = "".join(f'<figure><img src="{data_uri(Path(r.image or ""), 64)}"><figcaption>{html.escape(str(r.type))}: '
                   f'{html.escape(r.label)}</figcaption></figure>' for r in row.references if not r.bare)
    before, after = captions.get(row.id, ("", ""))
    status = row.verdict or "unverified"
    return (f'<tr class="{status}">{_verdict_cell(row)}<td><img src="{data_uri(Path(row.source_image or ""))}"></td>'
            f'<td>{refs}</td><td><img src="{data_uri(edits_dir / (row.image or ""))}"></td>'
            f'<td><p class="before">{html.escape(before)}</p><p class="after">{html.escape(after)}</p></td></tr>')


def write_edit_report(edits_dir: Path, target: Path, *, title: str = "dp edit report", intro: str = "",
                      summary: Iterable[tuple[str, Any]] = (), max_rows: int | None = None) -> Path:
    """report.html for the edits.jsonl in `edits_dir`: the summary table, then the edits, failures first."""
    from dp_cli.edit.manifest import MANIFEST, read_rows
    from dp_cli.edit.sheet import failures_first

    all_rows = read_rows(edits_dir / MANIFEST)
    rows = failures_first(all_rows)[:max_rows]
    counts = {k: sum(1 for r in all_rows if r.verdict == k) for k in ("passed", "failed")}
    summary_html = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                           for k, v in [*summary, ("verifier", f"{counts['passed']} passed, {counts['failed']} failed "
                                                               f"of {len(all_rows)} edits")])
    captions = captions_of(edits_dir)
    shown = f" (the first {len(rows)} of {len(all_rows)})" if len(rows) < len(all_rows) else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(intro)}</p>
<h2>Summary</h2><table>{summary_html}</table>
<h2>Edits{shown}: failures first</h2>
<table><tr><th>verifier</th><th>original</th><th>references</th><th>edited</th><th>description</th></tr>
{''.join(_row(r, edits_dir, captions) for r in rows)}</table></body></html>
"""
    write_text_atomic(target, page)
    return target

"""The demo's outputs for people: a contact sheet PNG and a small self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

MAX_ROWS = 24


def write_sheet(edits_dir: Path, target: Path) -> Path:
    """Original | references | edited, with the description before and after under each row."""
    from dp_cli.edit.report import captions_of
    from dp_cli.edit.sheet import write_contact_sheet

    return write_contact_sheet(edits_dir, target, max_rows=MAX_ROWS, captions=captions_of(edits_dir))


def write_html_report(result, target: Path) -> Path:
    """One self-contained page: the demo's summary table and one row per edit (failures first)."""
    from dp_cli.edit.report import write_edit_report

    intro = ("Fresh toy persons (never seen in training) edited with catalog attributes by the toy model, "
             f"described anew, exported as {result.export.format} and measured. Edits that failed the verifier "
             "come first and are not exported. Grey: description before; green: after.")
    return write_edit_report(result.out / "edits", target, title="dp demo: Diverse Person on the toy world",
                             intro=intro, summary=result.rows(), max_rows=MAX_ROWS)

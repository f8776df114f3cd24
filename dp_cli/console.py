"""Console rendering: messages and progress on stderr, `--json` summaries on stdout."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from dp_cli.distributed import is_main_process


@dataclass
class AppState:
    """Global options from the `dp` callback."""

    config: str | None = None
    quiet: bool = False
    verbose: bool = False
    json: bool = False
    redact: Callable[[str], str] | None = None  # set by a command that holds a secret (annotate's API key)


STATE = AppState()


def scrub(text: str) -> str:
    """`text` without the secrets of this run; everything printed goes through here."""
    return STATE.redact(text) if STATE.redact else text


def err_console() -> Console:
    """A console on stderr (created per call so tests capturing stderr see the output)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    """A progress message on stderr, unless --quiet or not the main process."""
    if not STATE.quiet and is_main_process():
        err_console().print(escape(scrub(message)))


def debug(message: str) -> None:
    """A message shown only with --verbose."""
    if STATE.verbose and is_main_process():
        err_console().print(f"[dim]{escape(scrub(message))}[/dim]")


def warn(message: str) -> None:
    """A warning on stderr (shown even with --quiet)."""
    if is_main_process():
        err_console().print(f"[yellow]warning:[/yellow] {escape(scrub(message))}")


def error(message: str) -> None:
    """The one-line error rendering."""
    err_console().print(f"[bold red]error:[/bold red] {escape(scrub(message))}", markup=True, emoji=False)


def progress(transient: bool = False) -> Progress:
    """A rich progress bar on stderr; disabled with --quiet, off the main process, or without a tty."""
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console(), transient=transient,
                    disable=STATE.quiet or not is_main_process() or not err_console().is_terminal)


def count(n: int, noun: str) -> str:
    """'1 person', '3 persons', '1 image': a count with its noun (plural with an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def render_summary(title: str, rows: Iterable[tuple[str, Any]] | dict, payload: dict | None = None) -> None:
    """Print a two-column summary table on stderr, and the payload as JSON on stdout with --json."""
    items = list(rows.items()) if isinstance(rows, dict) else list(rows)
    if STATE.json and is_main_process():
        out = payload if payload is not None else {k: v for k, v in items}
        sys.stdout.write(scrub(json.dumps(out, default=str, ensure_ascii=False)) + "\n")
        sys.stdout.flush()
    if STATE.quiet or not is_main_process():
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in items:
        table.add_row(scrub(str(key)), scrub(_fmt(value)))
    err_console().print(table)


def render_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a table with a header on stderr (not with --quiet)."""
    if STATE.quiet or not is_main_process():
        return
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[scrub(_fmt(v)) for v in row])
    err_console().print(table)


MAX_CELL = 400  # characters of one summary cell; --json keeps the whole value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    if len(text) > MAX_CELL:  # a 110 KB caption is not a summary
        return f"{text[:MAX_CELL]}... ({len(text) - MAX_CELL} more characters; --json has all)"
    return text

"""Option help texts must survive rich markup: `[default: x]` or `[train]` would vanish from --help."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from dp_cli.app import app

# What rich's markup parser takes for a style tag (and silently drops from the rendered text).
RICH_TAG = re.compile(r"(?<!\\)\[[a-z#/@][^\[\]]*\]")


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()):
    for info in group.registered_commands:
        yield prefix + (info.name or info.callback.__name__,), info.callback
    for sub in group.registered_groups:
        yield from _commands(sub.typer_instance, prefix + (sub.name,))


def test_no_option_help_contains_text_rich_would_swallow():
    import typing

    bad, seen = [], 0
    for path, fn in _commands(app):
        for name, hint in typing.get_type_hints(fn, include_extras=True).items():
            for meta in getattr(hint, "__metadata__", ()):
                seen += 1
                help_text = getattr(meta, "help", None) or ""
                if RICH_TAG.search(help_text):
                    bad.append(f"dp {' '.join(path)} {name}: {help_text!r}")
    assert seen > 50 and not bad, "\n".join(bad)


def test_edit_help_shows_its_defaults():
    out = CliRunner().invoke(app, ["edit", "--help"], env={"COLUMNS": "240"}).output
    assert "(default: the shipped toy model)" in out and "default: all" in out

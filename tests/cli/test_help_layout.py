"""`--help` at 80 columns: every option name whole (none cut to '--gradient-accumul…'), one metavar style
(PATH, TEXT, INT, FLOAT; nothing after a switch), for dp and every command and subcommand."""

from __future__ import annotations

import re

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from dp_cli.app import app


def _commands():
    """(argument path, click command) for dp, each command and each subcommand of a group."""
    root = get_command(app)
    ctx = typer.Context(root)
    out, todo = [], [((), root)]
    while todo:
        path, cmd = todo.pop(0)
        out.append((path, cmd))
        if hasattr(cmd, "list_commands"):
            todo += [((*path, n), cmd.get_command(ctx, n)) for n in cmd.list_commands(ctx)]
    return out


COMMANDS = _commands()


def _help(path: tuple[str, ...], columns: int = 80) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(columns), "TERMINAL_WIDTH": None})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_is_covered():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "train", "edit", "annotate", "export", "toy", "eval edits", "segment import"} <= names


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "dp" for p, _ in COMMANDS])
def test_every_option_name_is_whole_at_80_columns(path, command):
    out = _help(path)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out, out
    names = [o for p in command.get_params(typer.Context(command)) if not getattr(p, "hidden", False)
             for o in (*p.opts, *getattr(p, "secondary_opts", ())) if o.startswith("--")]
    assert "--help" in names
    missing = [n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", out)]
    assert not missing, f"dp {' '.join(path)} --help at 80 columns lacks {missing}:\n{out}"


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "dp" for p, _ in COMMANDS])
def test_one_metavar_style_and_none_after_switches(path, command):
    out = _help(path, columns=200)  # one row per option
    assert not re.search(r"<(str|path|int|float|bool)>", out), out
    for p in command.params:
        if p.param_type_name != "option" or getattr(p, "hidden", False) or not p.opts[0].startswith("--"):
            continue
        row = next(line for line in out.splitlines() if re.match(rf"│\s+(\*\s+)?{re.escape(p.opts[0])}(?![\w-])", line))
        after = row.split(p.opts[0], 1)[1]
        if p.is_flag:  # no value: no metavar between the names and the help
            assert not re.search(r"\b(BOOL|TEXT)\b", after), row
        else:
            assert re.search(r"\s(PATH|TEXT|INT|FLOAT|[A-Z]+|[\w-]+(\|[\w-]+)+)(\.\.\.)?\s", after), row


def test_train_help_shows_its_longest_flags_whole():
    out = _help(("train",))
    assert "--gradient-accumulation-steps" in out and "--max-reference-attribute-num" in out
    assert re.search(r"--scale-lr\s.*\n.*--no-scale-lr", out)


def test_global_options_list_completion():
    out = _help(())
    assert "--install-completion" in out and "--show-completion" in out and "PATH" in out

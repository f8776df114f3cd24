"""`dp --help`, `dp --version` and the --help of every registered command."""

from __future__ import annotations

import re

import pytest

from dp_cli.app import COMMANDS


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_registered_command_has_help(dp, name):
    result = dp(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and name in result.stdout


def test_top_level_help_lists_built_commands(dp):
    result = dp("--help")
    assert result.exit_code == 0
    listed = {m.group(1) for m in re.finditer(r"^│ ([a-z]+)\s", result.stdout, re.M)}
    assert listed == set(COMMANDS)
    assert "export" in listed


def test_version(dp):
    result = dp("--version")
    assert result.exit_code == 0 and result.stdout.startswith("dp ")


def test_top_level_help_lists_commands_in_pipeline_order(dp):
    """Command groups (segment, eval) are listed where the pipeline has them, not after the rest."""
    result = dp("--help")
    assert result.exit_code == 0, result.output
    rows = [re.match(r"│ (\w+)\s", line) for line in result.stdout.splitlines()]
    listed = [m.group(1) for m in rows if m and m.group(1) in COMMANDS]
    assert listed == list(COMMANDS)


def test_a_huge_value_is_cut_in_the_summary_table_not_in_json(capsys):
    from dp_cli import console

    console.render_summary("t", [("caption", "word " * 30000)])
    err = capsys.readouterr().err
    assert "more characters; --json has all" in err and len(err) < 5000

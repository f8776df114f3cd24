"""A bad value is a usage error (exit 2) when it came from a command-line option, as click's own bad option
values are; the same value from the TOML file or the environment is a config error (exit 1)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dp_cli.app import app


def _run(args, cwd, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"DP_CONFIG": None, "DP_DATASET": None, **(env or {})})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return result.exit_code, lines[0]


@pytest.mark.parametrize("args, needle", [
    (["export", "--format", "bogus", "--dataset", "d", "--out", "o"], "flags: [export] format: unknown format"),
    (["toy", "--persons", "0", "--out", "w"], "flags: [toy] persons"),
    (["toy", "--persons", "abc", "--out", "w"], "Invalid value for '--persons'"),  # click's own check
    (["edit", "--steps", "0"], "flags: [edit] steps"),
])
def test_bad_option_values_exit_2(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    code, line = _run(args, tmp_path)
    assert code == 2 and needle in line, line


@pytest.mark.parametrize("table, key, value, args, needle", [
    ("export", "format", '"bogus"', ["export", "--dataset", "d", "--out", "o"], "[export] format: unknown format"),
    ("toy", "persons", "0", ["toy", "--out", "w"], "[toy] persons"),
])
def test_the_same_values_from_the_toml_file_exit_1(tmp_path, monkeypatch, table, key, value, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dp.toml").write_text(f"[{table}]\n{key} = {value}\n")
    code, line = _run(["--config", tmp_path / "dp.toml", *args], tmp_path)
    assert code == 1 and needle in line and str(tmp_path / "dp.toml") in line, line


def test_a_bad_value_from_the_environment_exits_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, line = _run(["train", "--dataset", "d"], tmp_path, env={"DP_MIXED_PRECISION": "fp17"})
    assert code == 1 and "env DP_MIXED_PRECISION" in line, line


def test_flag_and_toml_problems_together_exit_1(tmp_path, monkeypatch):
    """Reported together; the file needs fixing too, so it is not only a usage error."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dp.toml").write_text("[toy]\nheight = 0\n")
    code, line = _run(["--config", tmp_path / "dp.toml", "toy", "--persons", "0", "--out", "w"], tmp_path)
    assert code == 1 and "flags: [toy] persons" in line and "[toy] height" in line, line


def test_option_error_is_a_config_error_with_exit_code_2():
    from dp_cli.config import Section, ProjectFile, resolve_section
    from dp_cli.errors import ConfigError, OptionError

    class Steps(Section):
        steps: int = 1

    with pytest.raises(OptionError) as info:
        resolve_section(Steps, "steps", ProjectFile(None), {"steps": "x"})
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2

"""The one config resolution (dp_cli/config.py): precedence, paths, and problems reported together."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, field_validator, model_validator

from dp_cli import config as C
from dp_cli.config import tomllib
from dp_cli.errors import ConfigError


class Demo(C.Section):
    """A small section for these tests."""

    steps: int = Field(10, description="Steps.", json_schema_extra={"env": "DP_TEST_STEPS"})
    name: str = Field("x", description="A name.")
    data: Path | None = Field(None, description="A path.")
    extra_paths: list[Path] = Field(default_factory=list, description="More paths.")
    model: str = C.path_or_hub(default="org/model", description="A model.")
    rate: float = Field(0.5, description="A rate in [0, 1].")

    @field_validator("rate")
    @classmethod
    def _unit(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError("must be between 0 and 1")
        return v


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("DP_TEST_STEPS", raising=False)
    monkeypatch.delenv(C.CONFIG_ENV, raising=False)
    monkeypatch.setitem(C.SECTIONS, "demo_table", Demo)

    def write(text: str, name: str = "proj/dp.toml", checked: bool = True) -> C.ProjectFile:
        """The project file read by load_project (checked), or only parsed, for resolve_section's own checks."""
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return C.load_project(path, explicit=True) if checked else C.ProjectFile(path.resolve(), tomllib.loads(text))

    return write


def test_precedence_flag_env_toml_default(project, monkeypatch):
    assert C.resolve_section(Demo, "demo_table", C.ProjectFile(None)).steps == 10
    p = project("[demo_table]\nsteps = 20\nname = 'toml'\n")
    assert C.resolve_section(Demo, "demo_table", p).steps == 20
    monkeypatch.setenv("DP_TEST_STEPS", "30")
    got = C.resolve_section(Demo, "demo_table", p)
    assert (got.steps, got.name) == (30, "toml")
    assert C.resolve_section(Demo, "demo_table", p, {"steps": 40, "name": None}).steps == 40
    monkeypatch.setenv("DP_TEST_STEPS", "")  # empty env counts as unset
    assert C.resolve_section(Demo, "demo_table", p).steps == 20


def test_relative_paths_resolve_against_the_toml_folder(project, tmp_path, monkeypatch):
    (tmp_path / "proj" / "local-model").mkdir(parents=True)
    p = project("[demo_table]\ndata = 'd/x.json'\nextra_paths = ['a', '/abs/b']\nmodel = 'local-model'\n")
    got = C.resolve_section(Demo, "demo_table", p)
    assert got.data == tmp_path / "proj" / "d" / "x.json"
    assert got.extra_paths == [tmp_path / "proj" / "a", Path("/abs/b")]
    assert got.model == str(tmp_path / "proj" / "local-model")
    monkeypatch.chdir(tmp_path)
    assert C.resolve_section(Demo, "demo_table", p, {"data": "flag.json"}).data == tmp_path / "flag.json"


def test_hub_ids_stay_as_they_are(project):
    p = project("[demo_table]\nmodel = 'someorg/some-model'\n")
    assert C.resolve_section(Demo, "demo_table", p).model == "someorg/some-model"


def test_unknown_key_has_did_you_mean(project):
    p = project("[demo_table]\nstesp = 3\n", checked=False)
    with pytest.raises(ConfigError) as info:
        C.resolve_section(Demo, "demo_table", p)
    assert info.value.problems == [f"{p.path}: [demo_table] stesp: unknown key (did you mean 'steps'?)"]
    with pytest.raises(ConfigError) as info:  # reading the file finds it too
        project("[demo_table]\nstesp = 3\n")
    assert info.value.problems == ["[demo_table] stesp: unknown key (did you mean 'steps'?)"]


def test_wrong_type_names_table_key_and_value(project):
    p = project("[demo_table]\nsteps = 'many'\n")
    with pytest.raises(ConfigError, match=r"\[demo_table\] steps: .*integer.*\(got 'many'\)"):
        C.resolve_section(Demo, "demo_table", p)


def test_all_problems_reported_together(project):
    p = project("[demo_table]\nstesp = 3\nsteps = 'many'\nrate = 2.0\n", checked=False)
    with pytest.raises(ConfigError) as info:
        C.resolve_section(Demo, "demo_table", p)
    problems = info.value.problems
    assert len(problems) == 3
    with pytest.raises(ConfigError) as read:  # reading the file reports the same three
        project("[demo_table]\nstesp = 3\nsteps = 'many'\nrate = 2.0\n")
    assert len(read.value.problems) == 3
    assert any("stesp: unknown key" in x for x in problems)
    assert any("steps:" in x and "'many'" in x for x in problems)
    assert any("rate: must be between 0 and 1 (got 2.0)" in x for x in problems)
    assert str(info.value).count("; ") == 2  # one line


def test_unknown_table_and_non_table(project):
    with pytest.raises(ConfigError, match=r"\[demo_tabel\]: unknown table \(did you mean 'demo_table'\?\)"):
        project("[demo_tabel]\nsteps = 1\n")
    with pytest.raises(ConfigError, match="expected a table"):
        project("demo_table = 3\n")
    with pytest.raises(ConfigError, match=r"persons = 4: a key outside any table \(put it under its table"):
        project("persons = 4\n")  # was '[persons]: unknown table'


def test_broken_toml_names_the_file(project):
    with pytest.raises(ConfigError, match=r"dp.toml: invalid TOML: .*line 2"):
        project("[demo_table]\nsteps = = 1\n")


def test_missing_files_default_vs_explicit(tmp_path, monkeypatch):
    monkeypatch.delenv(C.CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert C.load_project(None).path is None  # no ./dp.toml: defaults only
    with pytest.raises(ConfigError, match="nope.toml: config file not found"):
        C.load_project(tmp_path / "nope.toml", explicit=True)
    monkeypatch.setenv(C.CONFIG_ENV, str(tmp_path / "env.toml"))
    with pytest.raises(ConfigError, match="env.toml: config file not found"):
        C.load_project(None)


def test_env_var_declared_on_field():
    assert C.env_var(Demo, "steps") == "DP_TEST_STEPS" and C.env_var(Demo, "name") is None


def test_bad_option_value_read_from_its_variable_names_the_variable(monkeypatch):
    monkeypatch.setenv("DP_TEST_STEPS", "many")
    with pytest.raises(ConfigError) as info:  # the option was not given: the CLI passes None, the variable is read here
        C.resolve_section(Demo, "demo_table", C.ProjectFile(None), {"steps": None})
    assert "env DP_TEST_STEPS: [demo_table] steps" in str(info.value)
    with pytest.raises(ConfigError) as info:  # typed on the command line: a flag
        C.resolve_section(Demo, "demo_table", C.ProjectFile(None), {"steps": "lots"})
    assert "flags: [demo_table] steps" in str(info.value)


def test_only_the_config_reads_the_settings_variables():
    """Options of settings are built from their fields without Typer's envvar, so a value set in the environment
    reaches resolve_section as the variable's (and is blamed on it), never disguised as a flag."""
    import typer.main

    from dp_cli.app import app

    def params(cmd):
        yield from ((cmd, p) for p in cmd.params)
        for sub in getattr(cmd, "commands", {}).values():
            yield from params(sub)

    read = [f"{c.name} {p.name}: {p.envvar}" for c, p in params(typer.main.get_command(app))
            if p.param_type_name == "option" and p.envvar and p.envvar != C.CONFIG_ENV]
    assert read == []


def test_a_setting_option_shows_the_field_text_variable_and_default():
    from typer.testing import CliRunner

    from dp_cli.app import app
    from dp_cli.segment.config import SegmentConfig

    out = " ".join(CliRunner().invoke(app, ["segment", "--help"], env={"COLUMNS": "240"}).output.split())
    text = " ".join(SegmentConfig.model_fields["device"].description.split())
    assert f"{text} [env var: DP_SEGMENT_DEVICE] [default: auto]" in out


def test_unknown_table_and_unknown_keys_reported_together(tmp_path):
    path = tmp_path / "dp.toml"
    path.write_text('[exprt]\nx = 1\n[export]\nformt = "native"\n')
    with pytest.raises(ConfigError) as info:
        C.load_project(path)
    text = str(info.value)
    assert "[exprt]: unknown table (did you mean 'export'?)" in text
    assert "[export] formt: unknown key (did you mean 'format'?)" in text


def test_unknown_keys_and_wrong_values_of_real_tables_reported_together(tmp_path):
    """An unknown key does not hide the wrong types and bad values beside it (any table)."""
    path = tmp_path / "dp.toml"
    path.write_text('[toy]\npersns = 3\nheight = "big"\n[export]\nformat = "cuhk"\nlink = false\n')
    with pytest.raises(ConfigError) as info:
        C.load_project(path)
    problems = info.value.problems
    assert len(problems) == 3
    assert "[toy] persns: unknown key (did you mean 'persons'?)" in problems
    assert any(p.startswith("[toy] height: ") and "(got 'big')" in p for p in problems)
    assert any(p.startswith("[export] format: ") and "(got 'cuhk')" in p for p in problems)


def test_bad_value_is_blamed_on_where_it_came_from(project, monkeypatch):
    """A good TOML value overridden by a bad env var or flag: the message names the env var / flags."""
    p = project("[demo_table]\nsteps = 3\nrate = 0.5\n")
    monkeypatch.setenv("DP_TEST_STEPS", "many")
    with pytest.raises(ConfigError) as info:
        C.resolve_section(Demo, "demo_table", p, {"rate": 2.0})
    problems = info.value.problems
    assert len(problems) == 2
    assert any(x.startswith("env DP_TEST_STEPS: [demo_table] steps:") and "'many'" in x for x in problems)
    assert any(x.startswith("flags: [demo_table] rate: must be between 0 and 1") for x in problems)
    assert not any(str(p.path) in x for x in problems)


def test_cli_error_keeps_table_name(tmp_path):
    from typer.testing import CliRunner

    from dp_cli.app import app

    path = tmp_path / "dp.toml"
    path.write_text('[export]\nformt = "native"\n')
    result = CliRunner().invoke(app, ["--config", str(path), "export", "--dataset", str(tmp_path)])
    assert result.exit_code == 1
    assert "[export] formt: unknown key" in result.output


def test_pydantic_errors_raised_inside_a_command_are_one_line(monkeypatch):
    import typer
    from pydantic import Field
    from typer.testing import CliRunner

    from dp_cli.cli_common import dp_command

    class Inner(C.Section):
        steps: int = Field(1, ge=1)

    @dp_command
    def run() -> None:
        Inner(steps=0)

    app = typer.Typer()
    app.command()(run)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1
    assert "invalid settings for Inner: steps: Input should be greater than or equal to 1 (got 0)" in result.output
    assert "Traceback" not in result.output


class Pair(C.Section):
    """A section with a check across two keys."""

    low: int = Field(1, description="Low.")
    high: int = Field(2, description="High.")

    @model_validator(mode="after")
    def _ordered(self) -> "Pair":
        if self.low > self.high:
            raise ValueError(f"low={self.low} is more than high={self.high}")
        return self


def test_cross_key_error_names_the_keys_without_dumping_the_table(project, monkeypatch):
    monkeypatch.setitem(C.SECTIONS, "pair_table", Pair)
    p = project("[pair_table]\nlow = 5\n")
    with pytest.raises(ConfigError) as info:
        C.resolve_section(Pair, "pair_table", p, {"high": 3})
    assert info.value.problems == [f"{p.path}: [pair_table]: low=5 is more than high=3"]


def test_setting_option_takes_text_variable_and_default_from_the_field():
    from dp_cli.annotate.config import AnnotateConfig
    from dp_cli.cli_common import setting_option
    from dp_cli.export.config import ExportConfig

    steps = setting_option(Demo, "steps", "--steps")
    assert (steps.help, steps.envvar, steps.show_default) == ("Steps. \\[env var: DP_TEST_STEPS]", None, "10")
    assert setting_option(Demo, "data").show_default is True  # no default: Typer's (the option's None: nothing)
    assert setting_option(ExportConfig, "link", "--link/--copy").show_default == "--copy"
    assert setting_option(ExportConfig, "include_failed_edits").show_default == "--no-include-failed-edits"
    prompt = setting_option(AnnotateConfig, "prompt_file")  # brackets stay text under rich markup
    assert "\\[system]/\\[user]" in prompt.help and "[system]" in AnnotateConfig.model_fields["prompt_file"].description

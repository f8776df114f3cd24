"""A project file of any bytes and values of any type give one-line config errors naming the file and line
or the table.key, never a traceback (issue 15, items 4 and 5)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, field_validator
from typer.testing import CliRunner

from dp_cli import config as C
from dp_cli.errors import ConfigError, DpError

VALUES = [5, -1, 1.5, True, [1, 2], [[1]], {"a": 1}, "", "x", [], "1979-05-27"]


def _cli(*args):
    from dp_cli import console
    from dp_cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    console.STATE = console.AppState()
    return result


@pytest.mark.parametrize("value, shown", [("5", "5"), ("[1, 2]", "[1, 2]"), ("true", "True")])
def test_edit_types_of_the_wrong_type_is_one_line_naming_table_and_key(tmp_path, value, shown):
    path = tmp_path / "dp.toml"
    path.write_text(f"[edit]\ntypes = {value}\n")
    result = _cli("--config", path, "edit", "--dataset", tmp_path, "--catalog", tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: invalid settings: {path}: [edit] types: expected a list of type names")
    assert lines[0].endswith(f"(got {shown})")


@pytest.mark.parametrize("table", sorted(C.SECTIONS))
def test_every_key_of_every_table_takes_any_value_without_a_crash(table):
    model = C.section_model(table)
    for key in model.model_fields:
        for value in VALUES:
            try:
                C.resolve_section(model, table, C.ProjectFile(None, {table: {key: value}}))
            except ConfigError as exc:
                assert f"[{table}] {key}" in str(exc) or f"[{table}]" in str(exc)


class Fragile(C.Section):
    """A section whose validator trips over a value of an unexpected type (as [edit] types did)."""

    words: list[str] = Field(["a"], description="Words.")

    @field_validator("words", mode="before")
    @classmethod
    def _lower(cls, v):
        return [w.lower() for w in v]


def test_a_validator_tripping_over_a_type_is_a_config_error_naming_the_key():
    for value in (5, [1, 2]):
        with pytest.raises(ConfigError) as info:
            C.resolve_section(Fragile, "fragile", C.ProjectFile(None), {"words": value})
        assert info.value.problems == [f"flags: [fragile] words: wrong type of value (got {value!r})"]


def test_a_project_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "dp.toml"
    path.write_bytes(b'[edit]\nsplit = "train"\ntypes = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=rf"^{path}:3: not UTF-8 text \(byte 0xe9\) \(save the file as UTF-8\)$"):
        C.load_project(path, explicit=True)
    result = _cli("--config", path, "export")
    assert result.exit_code == 1 and f"{path}:3: not UTF-8 text" in result.stderr and "Traceback" not in result.output


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from([b"[edit]\n", b"[train]\n", b"[data]\n", b"[nope]\n", b"types = ", b"split = ",
                              b"seed = ", b"dataset = ", b"5", b"[1, 2]", b'"x"', b"{a = 1}", b"true", b"\n",
                              b"\xe9", b"[[", b"]]", b"=", b"1979-05-27", b"nan", b"[" * 40]),
             max_size=30).map(b"".join)))
def test_any_bytes_give_a_project_or_one_config_error(tmp_path, data):
    path = tmp_path / "dp.toml"
    path.write_bytes(data)
    try:
        project = C.load_project(path, explicit=True)
        for table in project.tables:
            C.resolve_section(C.section_model(table), table, project)
    except DpError as exc:
        assert isinstance(exc, ConfigError) and "\n" not in str(exc)

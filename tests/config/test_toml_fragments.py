"""Every table of dp.toml.example, as written from its section model, loads and documents every field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from dp_cli import docs_build
from dp_cli.config import SECTIONS, ProjectFile, resolve_section, section_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("table", list(SECTIONS))
def test_table_loads_and_covers_every_field(table):
    path = ROOT / "dp.toml"  # where a copy of the table would be
    text = docs_build.table_toml(table)
    tables = tomllib.loads(text)
    assert list(tables) == [table]
    model = section_model(table)
    resolved = resolve_section(model, table, ProjectFile(path, tables))
    documented = set(tables[table]) | set(re.findall(r"^# ?(\w+) = ", text, re.M))
    assert documented >= set(model.model_fields), set(model.model_fields) - documented
    for key, value in tables[table].items():  # shown values are the defaults
        default = model.model_fields[key].get_default(call_default_factory=True)
        got = getattr(resolved, key)
        if isinstance(default, Path):
            default = path.parent / default
        assert got == default or (got is not None and default is not None and str(got) == str(default)), key
    lines = text.splitlines()
    for i, line in enumerate(lines):  # every key has a comment above it or on its line
        if re.match(r"^\w+ = ", line):
            assert "#" in line or lines[i - 1].startswith("#"), line


@pytest.mark.parametrize("table", list(SECTIONS))
def test_examples_of_unset_keys_are_valid_values(table):
    model = section_model(table)
    examples = {k: f.examples[0] for k, f in model.model_fields.items() if f.examples}
    resolve_section(model, table, ProjectFile(ROOT / "dp.toml", {table: examples}))


def test_every_field_is_described():
    missing = [f"[{t}] {k}" for t in SECTIONS for k, f in section_model(t).model_fields.items()
               if not (f.description or "").strip()]
    assert missing == []


def test_values_are_written_as_toml():
    value = {"s": 'a "b"', "n": 3, "f": 1e-5, "yes": True, "l": [1, "x"], "d": {0: "bg"}, "e": {}}
    text = "\n".join(f"{k} = {docs_build.toml_value(v)}" for k, v in value.items())
    assert tomllib.loads(text) == {**value, "d": {"0": "bg"}}

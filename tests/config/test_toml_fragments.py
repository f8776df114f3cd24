"""docs/toml/data.toml and export.toml load into their sections and document every field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from dp_cli.config import ProjectFile, resolve_section, section_model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "toml"


@pytest.mark.parametrize("table", ["data", "export"])
def test_fragment_loads_and_covers_every_field(table):
    path = DOCS / f"{table}.toml"
    text = path.read_text()
    tables = tomllib.loads(text)
    assert list(tables) == [table]
    model = section_model(table)
    resolved = resolve_section(model, table, ProjectFile(path, tables))
    documented = set(tables[table]) | set(re.findall(r"^# (\w+) = ", text, re.M))
    assert documented == set(model.model_fields)
    for key, value in tables[table].items():  # shown values are the defaults
        assert getattr(resolved, key) == model.model_fields[key].default, key
    for name in set(model.model_fields) - set(tables[table]):
        assert model.model_fields[name].default is None, f"{name}: commented out but has a default"
    # every key has a comment line right above it
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^#? ?\w+ = ", line) and not line.startswith("# [") and i:
            assert lines[i - 1].startswith("# "), line

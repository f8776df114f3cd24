"""Every docs/toml/<table>.toml fragment (the parts of dp.toml.example) loads and documents every field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from dp_cli.config import SECTIONS, ProjectFile, resolve_section, section_model

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "toml"


@pytest.mark.parametrize("table", sorted(p.stem for p in DOCS.glob("*.toml")))
def test_fragment_loads_and_covers_every_field(table):
    path = DOCS / f"{table}.toml"
    text = path.read_text()
    tables = tomllib.loads(text)
    assert list(tables) == [table]
    model = section_model(table)
    resolved = resolve_section(model, table, ProjectFile(path, tables))
    documented = set(tables[table]) | set(re.findall(r"^# ?(\w+) = ", text, re.M))
    assert documented >= set(model.model_fields), set(model.model_fields) - documented
    for key, value in tables[table].items():  # shown values are the defaults
        default = model.model_fields[key].default
        got = getattr(resolved, key)
        if isinstance(default, Path):
            default = path.parent / default
        assert got == default or (got is not None and default is not None and str(got) == str(default)), key
    lines = text.splitlines()
    for i, line in enumerate(lines):  # every key has a comment above it or on its line
        if re.match(r"^\w+ = ", line):
            assert "#" in line or lines[i - 1].startswith("#"), line


def test_every_section_has_a_fragment():
    assert sorted(p.stem for p in DOCS.glob("*.toml")) == sorted(SECTIONS)

"""dp.toml.example loads, covers every key of every section, and is written from the section models."""

from __future__ import annotations

import re
from pathlib import Path

from dp_cli import docs_build
from dp_cli.config import SECTIONS, load_project, resolve_section, section_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "dp.toml.example"


def test_example_loads_into_every_section():
    project = load_project(EXAMPLE, explicit=True)
    assert sorted(project.tables) == sorted(SECTIONS)
    for table in SECTIONS:
        resolve_section(section_model(table), table, project)


def test_example_documents_every_key():
    text = EXAMPLE.read_text()
    chunks = re.split(r"^\[(\w+)\]$", text, flags=re.M)
    for table, body in zip(chunks[1::2], chunks[2::2]):
        documented = set(re.findall(r"^#? ?(\w+) = ", body, re.M))
        missing = set(section_model(table).model_fields) - documented
        assert not missing, f"[{table}] undocumented: {missing}"


def test_example_is_the_tables_in_pipeline_order():
    text = EXAMPLE.read_text()
    order = ["data", "toy", "segment", "train", "edit", "annotate", "export", "eval", "baseline", "demo"]
    assert list(SECTIONS) == order
    body = "".join(docs_build.table_toml(t) + "\n" for t in order)
    assert text.endswith(body) and text == docs_build.example_config(), \
        "regenerate dp.toml.example with `make example-config`"


def test_shipped_example_configs_load():
    for path in sorted((ROOT / "examples").rglob("*.toml")):
        project = load_project(path, explicit=True)
        for table in project.tables:
            resolve_section(section_model(table), table, project)


def test_each_commented_key_can_be_uncommented_as_it_is(tmp_path):
    """A user enables an example or a default by deleting its '# ': the file must still load, with no key
    twice and no text after the value that TOML does not read as a comment."""
    lines = EXAMPLE.read_text().splitlines()
    table, tried = None, 0
    for i, line in enumerate(lines):
        if re.fullmatch(r"\[(\w+)\]", line):
            table = line[1:-1]
        if not (table and re.match(r"# \w+ = ", line)):
            continue
        edited = tmp_path / "dp.toml"
        edited.write_text("\n".join(lines[:i] + [line[2:]] + lines[i + 1:]) + "\n")
        project = load_project(edited, explicit=True)
        resolve_section(section_model(table), table, project)
        tried += 1
    assert tried > 20

"""The [segment] table of dp.toml.example loads into SegmentConfig, shows every default, and bad values are named."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dp_cli import docs_build
from dp_cli.config import ProjectFile, resolve_section
from dp_cli.errors import ConfigError
from dp_cli.segment.config import SegmentConfig

FRAGMENT = Path(__file__).resolve().parents[2] / "dp.toml"  # where a copy of the table would be


def test_fragment_documents_every_field_with_its_default():
    text = docs_build.table_toml("segment")
    tables = tomllib.loads(text)
    commented_defaults = {line[2:].split(" = ")[0] for line in text.splitlines() if line.endswith("# the default")}
    assert commented_defaults == {"labels"}  # a default followed by an example stays a comment
    assert list(tables) == ["segment"] and set(tables["segment"]) | commented_defaults == set(SegmentConfig.model_fields)
    cfg = resolve_section(SegmentConfig, "segment", ProjectFile(FRAGMENT, tables))
    assert cfg == SegmentConfig()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split(" = ")[0] in SegmentConfig.model_fields:
            assert lines[i - 1].startswith("# "), line


def test_bad_values_are_all_reported(tmp_path):
    tables = {"segment": {"batch_size": 0, "device": "tpu", "labels": {"3": "tail"}, "images": "move",
                          "label_sets": "lip"}}
    with pytest.raises(ConfigError) as exc:
        resolve_section(SegmentConfig, "segment", ProjectFile(tmp_path / "dp.toml", tables))
    text = str(exc.value)
    for part in ("batch_size", "device", "3='tail'", "images", "label_sets: unknown key (did you mean 'label_set'?)"):
        assert part in text, part


def test_env_overrides_toml(monkeypatch, tmp_path):
    monkeypatch.setenv("DP_SEGMENT_DEVICE", "cpu")
    cfg = resolve_section(SegmentConfig, "segment", ProjectFile(tmp_path / "dp.toml", {"segment": {"device": "cuda"}}))
    assert cfg.device == "cpu"

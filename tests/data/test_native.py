"""The native format's one module: header, write then read, and the in-memory default naming it."""

from __future__ import annotations

import json

from dp_cli.data.dataset import PersonDataset, PersonRecord
from dp_cli.data.formats.native import (NATIVE_ANNOTATIONS, NATIVE_FORMAT, NATIVE_HEADER, NativeFormat, load_native,
                                        native_header, read_header)


def test_an_in_memory_dataset_defaults_to_the_native_format_name():
    assert PersonDataset(root=None, records=[]).source_format == NATIVE_FORMAT == "dp-native"


def test_native_header_puts_the_fixed_keys_first_then_extra():
    header = native_header("atr", "w", generator={"seed": 3})
    assert list(header) == ["format", "version", "label_set", "name", "generator"]
    assert header == {"format": "dp-native", "version": 1, "label_set": "atr", "name": "w", "generator": {"seed": 3}}


def test_write_then_load_keeps_records_and_header(tmp_path):
    recs = [PersonRecord("a", "img/a.png", 0, "train", ["a red shirt"], parsing="parsing/a.png", extra={"k": 1}),
            PersonRecord("b", "img/b.png", 1, "test", ["blue jeans"])]
    target = NativeFormat().write(PersonDataset(tmp_path, recs, label_set="atr", name="mine"), tmp_path)
    assert target == tmp_path / NATIVE_ANNOTATIONS
    assert json.loads((tmp_path / NATIVE_HEADER).read_text()) == native_header("atr", "mine") == read_header(tmp_path)
    ds = load_native(tmp_path)
    assert ds.records == recs and ds.name == "mine" and ds.source_format == NATIVE_FORMAT

"""Importers of every format on small fixtures written here; detection; errors naming the record."""

from __future__ import annotations

import json

import pytest

from dp_cli.data.formats import FORMAT_NAMES, get_format, record_id_from_path
from dp_cli.data.loading import load_dataset
from dp_cli.errors import DataError

TBPS = ["cuhk-pedes", "icfg-pedes", "rstpreid"]


@pytest.mark.parametrize("fmt", TBPS)
def test_tbps_importer_reads_fields_ids_and_splits(kit, tmp_path, fmt):
    kit.write_tbps(tmp_path, fmt, kit.sample_entries(fmt))
    ds = load_dataset(tmp_path)
    assert ds.source_format == fmt and ds.root == tmp_path
    first = ds.records[0]
    assert first.image == "imgs/train/0000/0000_0.jpg" and ds.image_path(first).is_file()
    assert first.id == "train__0000__0000_0"
    assert first.person_id == 0  # in memory every format counts from 0 (CUHK-PEDES stores 1)
    assert first.captions == ["A person 0 in a red shirt, view 0.", "Person 0 walking."]
    counts = ds.counts()
    assert counts["train"] == {"images": 6, "persons": 3, "captions": 12}
    assert counts["test"]["persons"] == 2
    assert ("val" in counts) == (fmt != "icfg-pedes")


@pytest.mark.parametrize("fmt", TBPS)
def test_detect_from_file_and_named_format(kit, tmp_path, fmt):
    ann = kit.write_tbps(tmp_path, fmt, kit.sample_entries(fmt))
    assert load_dataset(ann).source_format == fmt
    assert load_dataset(tmp_path, fmt).records == load_dataset(ann).records


def test_a_named_format_whose_file_is_missing_says_what_the_folder_holds(kit, tmp_path):
    kit.write_native(tmp_path, kit.native_rows())
    with pytest.raises(DataError, match=r"no reid_raw.json for format cuhk-pedes; this folder holds a native "
                                        r"dataset") as info:
        load_dataset(tmp_path, "cuhk-pedes")
    assert "auto" in info.value.hint


def test_native_reads_parsing_and_extra(kit, tmp_path):
    kit.write_native(tmp_path, kit.native_rows())
    ds = load_dataset(tmp_path)
    assert ds.source_format == "dp-native" and ds.label_set == "atr" and ds.name == "tiny"
    rec = ds.by_id()["p1_1"]
    assert (rec.person_id, rec.split, rec.parsing, rec.extra) == (1, "train", "parsing/p1_1.png", {"k": 1})


def test_renamed_files_are_sniffed_or_need_a_format(kit, tmp_path):
    kit.write_tbps(tmp_path, "rstpreid", kit.sample_entries("rstpreid"))
    (tmp_path / "data_captions.json").rename(tmp_path / "mine.json")
    assert load_dataset(tmp_path / "mine.json").source_format == "rstpreid"
    kit.write_tbps(tmp_path / "c", "cuhk-pedes", kit.sample_entries("cuhk-pedes"))
    (tmp_path / "c" / "reid_raw.json").rename(tmp_path / "c" / "other.json")
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        load_dataset(tmp_path / "c" / "other.json")
    assert load_dataset(tmp_path / "c" / "other.json", "cuhk-pedes").source_format == "cuhk-pedes"


def test_record_ids_are_stable_and_path_derived():
    assert record_id_from_path("CUHK01/0107002.png") == "CUHK01__0107002"
    assert record_id_from_path("a.b/c") == "a.b__c"


def test_format_registry_names_and_aliases():
    assert FORMAT_NAMES == ("native", "cuhk-pedes", "icfg-pedes", "rstpreid", "tbps-clip")
    assert get_format("CUHK_PEDES").name == "cuhk-pedes"
    with pytest.raises(DataError, match="unknown dataset format 'market'"):
        get_format("market")


def _bad(kit, tmp_path, fmt="cuhk-pedes", **change):
    entries = kit.sample_entries(fmt)
    index = change.pop("index", 1)
    drop = change.pop("drop", None)
    kit.write_tbps(tmp_path, fmt, entries)
    path = tmp_path / kit.TBPS_LAYOUT[fmt][0]
    rows = json.loads(path.read_text())
    rows[index].update(change)
    if drop:
        del rows[index][drop]
    path.write_text(json.dumps(rows))
    return path


@pytest.mark.parametrize("change, message", [
    ({"file_path": "../../etc/passwd.jpg"}, r"record 1 \(file_path\): path '../../etc/passwd.jpg' escapes"),
    ({"file_path": "/abs/x.jpg"}, "escapes the dataset folder"),
    ({"file_path": "train/0000/0000_0.jpg"}, "record 'train__0000__0000_0': duplicate id"),
    ({"captions": []}, r"record 1 \(file_path 'train/0000/0000_1.jpg'\): empty caption"),
    ({"captions": ["ok", "  "]}, "empty caption"),
    ({"split": "query"}, "unknown split 'query'"),
    ({"drop": "captions"}, "record 1: missing field.s. captions"),
    ({"id": "seven"}, "id must be an integer person id, got 'seven'"),
])
def test_bad_records_name_the_record(kit, tmp_path, change, message):
    path = _bad(kit, tmp_path, **change)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(tmp_path)
    assert str(path) in str(info.value)


def test_icfg_has_no_val_split(kit, tmp_path):
    _bad(kit, tmp_path, "icfg-pedes", split="val")
    with pytest.raises(DataError, match="unknown split 'val'.*icfg-pedes splits are train, test"):
        load_dataset(tmp_path)


def test_malformed_json_empty_and_missing(kit, tmp_path):
    (tmp_path / "reid_raw.json").write_text('[{"split": "train",')
    with pytest.raises(DataError, match=r"reid_raw.json: malformed JSON at line 1"):
        load_dataset(tmp_path)
    (tmp_path / "reid_raw.json").write_text("[]")
    with pytest.raises(DataError, match="dataset is empty"):
        load_dataset(tmp_path)
    (tmp_path / "reid_raw.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="expected a JSON list"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="dataset not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "reid_raw.json").unlink()
    with pytest.raises(DataError, match="no dataset annotation file found"):
        load_dataset(tmp_path)


def test_native_bad_line_is_named(kit, tmp_path):
    kit.write_native(tmp_path, kit.native_rows())
    with open(tmp_path / "annotations.jsonl", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(DataError, match=r"annotations.jsonl:11: malformed JSON"):
        load_dataset(tmp_path)


def test_two_annotation_files_are_ambiguous(kit, tmp_path):
    kit.write_tbps(tmp_path, "cuhk-pedes", kit.sample_entries("cuhk-pedes"))
    kit.write_tbps(tmp_path, "rstpreid", kit.sample_entries("rstpreid"), images=False)
    with pytest.raises(DataError, match="several annotation files found"):
        load_dataset(tmp_path)
    assert load_dataset(tmp_path, "rstpreid").source_format == "rstpreid"

"""The stage hand-off records: edits.jsonl, annotations.jsonl and failure-log rows, their one reader and one writer."""

from __future__ import annotations

import json

import pytest

from dp_cli.data.handoff import (AnnotationRow, EditRow, FailureRow, parse_edit_rows, read_annotation_rows,
                                 read_descriptions, read_edit_rows, read_failure_rows)
from dp_cli.errors import DataError

# A line as `dp edit` writes it (docs/FORMATS.md), toy colour included, plus a field this version does not know.
FULL = {"id": "p0__v0", "image": "images/p0__v0.png", "mask": "masks/p0__v0.png", "source_id": "p0",
        "source_image": "/w/images/p0.png", "source_dataset": "/w", "person_id": 0, "variant": "0__v0",
        "split": "train", "base_description": "A man in a red shirt.", "prompt": "a man in a blue coat",
        "reference_attribute_list": [{"type": "uppercloth", "label": "blue coat", "image": "/w/catalog/c.png",
                                      "color": [0, 0, 200], "pattern": "plain", "replaced": "red shirt",
                                      "added_phrase": False, "preparation": {"method": "whole", "foreground": 1.0,
                                                                             "crop": [8, 16]}}],
        "seed": 7, "verify": {"score": 0.42, "passed": False, "min_score": 0.5, "method": "colour", "attributes": []},
        "status": "failed", "candidates": [{"seed": 7, "score": 0.42}, {"seed": 9, "score": 0.1}],
        "model": "tiny", "settings": {"steps": 2}, "from_a_newer_dp": {"x": 1}}


def _write(path, *lines: str):
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_a_full_row_round_trips_byte_for_byte(tmp_path):
    path = _write(tmp_path / "edits.jsonl", json.dumps(FULL) + "\n")
    [row] = read_edit_rows(path)
    assert json.dumps(row.to_json()) == json.dumps(FULL)  # same keys, same order, unknown field kept
    assert row.extra == {"from_a_newer_dp": {"x": 1}}
    ref = row.references[0]
    assert (ref.type, ref.label, ref.replaced, ref.extra) == ("uppercloth", "blue coat", "red shirt",
                                                             {"color": [0, 0, 200], "pattern": "plain"})
    assert row.where == f"{path}:1"


@pytest.mark.parametrize("ref", [{"label": "x", "replaced": "y"}, {"label": "x", "replaced": None, "added_phrase": True},
                                 {"type": "hair", "label": "x", "mask": "/m.png", "noun": "hat"}])
def test_references_written_back_as_read(ref):
    row = {"id": "a", "reference_attribute_list": [ref]}
    assert json.dumps(EditRow.from_json(row, "x:1").to_json()) == json.dumps(row)


def test_verdict_helpers():
    row = EditRow.from_json(FULL, "x:1")
    assert (row.verdict, row.failed, row.score, row.candidate_seeds) == ("failed", True, 0.42, {7, 9})
    passed = EditRow.from_json({**FULL, "status": "passed", "verify": {"score": 0.9}}, "x:1")
    assert (passed.verdict, passed.failed, passed.score) == ("passed", False, 0.9)
    old = EditRow.from_json({"id": "a", "seed": 3}, "x:1")  # written before the verifier
    assert (old.verdict, old.failed, old.score, old.candidate_seeds) == (None, False, None, {3})
    assert "status" not in old.to_json() and old.to_json() == {"id": "a", "seed": 3}


def test_missing_field_names_file_line_field_and_the_command(tmp_path):
    path = _write(tmp_path / "edits.jsonl", json.dumps(FULL) + "\n", json.dumps({"id": "b", "image": "x.png"}) + "\n")
    with pytest.raises(DataError, match=r"edits.jsonl:2: missing field\(s\) mask, source_id") as exc:
        list(read_edit_rows(path, ("id", "image", "mask", "source_id")))
    assert "`dp edit`" in exc.value.hint


def test_empty_required_field_and_wrong_type(tmp_path):
    with pytest.raises(DataError, match=r"x:3: empty base_description for id 'a'"):
        EditRow.from_json({"id": "a", "base_description": "  "}, "x:3", ("base_description",))
    with pytest.raises(DataError, match=r"x:3: field 'seed' must be an integer \(got True\)"):
        EditRow.from_json({"id": "a", "seed": True}, "x:3")
    with pytest.raises(DataError, match=r"x:3: reference_attribute_list\[1\] must be a label or an object"):
        EditRow.from_json({"id": "a", "reference_attribute_list": ["red hat", {"type": "hair"}]}, "x:3")


def test_a_malformed_line_is_reported_before_any_field(tmp_path):
    path = _write(tmp_path / "edits.jsonl", json.dumps({"id": 1}) + "\n", "not json\n")
    with pytest.raises(DataError, match=r"edits.jsonl:2: malformed JSON"):
        list(read_edit_rows(path, ("id", "image")))


def test_a_line_cut_by_a_crash_is_left_out_only_when_asked(tmp_path):
    path = _write(tmp_path / "edits.shard-000-of-002.jsonl", json.dumps({"id": "a"}) + "\n", '{"id": "b", "ima')
    assert [r.id for r in read_edit_rows(path, partial_tail=True)] == ["a"]
    with pytest.raises(DataError, match=r"shard-000-of-002.jsonl:2: malformed JSON"):
        list(read_edit_rows(path))


def test_missing_file_says_which_command_writes_it(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: file not found") as exc:
        read_edit_rows(tmp_path / "nope.jsonl")
    assert "`dp edit`" in exc.value.hint


def test_published_annotate_input_keeps_plain_labels():
    lines = [json.dumps({"base_description": "A woman.", "reference_attribute_list": [" gold hair "], "id": 5})]
    [row] = parse_edit_rows(lines, "<stdin>", ("base_description", "reference_attribute_list"))
    assert (row.id, row.references[0].label, row.references[0].type) == ("5", "gold hair", None)
    assert row.to_json() == {"id": "5", "base_description": "A woman.", "reference_attribute_list": ["gold hair"]}


def test_annotation_rows_round_trip_and_descriptions(tmp_path):
    row = AnnotationRow(key="k", id="e0", description=" A man. ", attributes=["blue coat"], model="m",
                        prompt_version="v1", usage={"prompt_tokens": 1, "completion_tokens": 2})
    line = json.dumps({**row.to_json(), "note": "kept"})
    assert list(json.loads(line)) == ["key", "id", "description", "attributes", "model", "prompt_version", "usage",
                                      "note"]
    path = _write(tmp_path / "annotations.jsonl", line + "\n")
    [back] = read_annotation_rows(path)
    assert back == AnnotationRow(**{**vars(row), "extra": {"note": "kept"}})
    assert read_descriptions(path) == {"e0": "A man."}
    _write(path, json.dumps({"key": "k", "id": "e1", "description": ""}) + "\n")
    with pytest.raises(DataError, match=r"annotations.jsonl:1: empty description for id 'e1'") as exc:
        read_descriptions(path)
    assert "`dp annotate`" in exc.value.hint


def test_failure_rows_round_trip_and_name_the_line_of_a_bad_field(tmp_path):
    row = FailureRow(key="k", id="e0", reason="refusal", detail="the model refused", attempts=3)
    assert row.to_json() == {"key": "k", "id": "e0", "reason": "refusal", "detail": "the model refused",
                             "attempts": 3}  # no last answer: absent, not null
    path = _write(tmp_path / "a.failed.jsonl", json.dumps({**row.to_json(), "last_answer": "No.", "x": 1}) + "\n")
    [back] = read_failure_rows(path)
    assert back == FailureRow(**{**vars(row), "last_answer": "No.", "extra": {"x": 1}})
    _write(path, json.dumps({"key": "k", "attempts": "3"}) + "\n")
    with pytest.raises(DataError, match=r"a.failed.jsonl:1: field 'attempts' must be an integer") as exc:
        list(read_failure_rows(path))
    assert "failure log" in exc.value.hint
    _write(path, json.dumps({"id": "e0"}) + "\n")
    with pytest.raises(DataError, match=r"a.failed.jsonl:1: missing field\(s\) key"):
        list(read_failure_rows(path))

import json

import pytest

from dp_cli.annotate.records import item_key, parse_record, read_input, select
from dp_cli.errors import DataError


def test_reads_manifest_and_published_format(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a__v0", "base_description": "A man in a black shirt.",
                                "reference_attribute_list": [{"type": "uppercloth", "label": "red jacket"}]}) + "\n\n"
                    + json.dumps({"base_description": "A woman.", "reference_attribute_list": ["gold hair"]}) + "\n")
    items = read_input(path)
    assert [(i.index, i.id) for i in items] == [(0, "a__v0"), (1, "1")]  # no id: the record's index
    assert items[0].attributes[0].type == "uppercloth" and items[1].labels == ["gold hair"]


@pytest.mark.parametrize("line, field", [
    ('{"reference_attribute_list": ["x"]}', "base_description"),
    ('{"base_description": "A man.", "reference_attribute_list": []}', "reference_attribute_list"),
    ('{"base_description": "A man.", "reference_attribute_list": [{"type": "hair"}]}', "reference_attribute_list[0]"),
    ('{"base_description": "A man.",', "malformed JSON"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "in.jsonl"
    path.write_text('{"base_description": "ok", "reference_attribute_list": ["red hat"]}\n' + line + "\n")
    with pytest.raises(DataError) as exc:
        read_input(path)
    assert f"{path}:2" in str(exc.value) and field in str(exc.value)


def _items(n):
    return [parse_record({"base_description": f"d{i}", "reference_attribute_list": ["red hat"]}, i, "x")
            for i in range(n)]


@pytest.mark.parametrize("start, end, step, indexes, slices", [
    (0, -1, 4, list(range(10)), [(0, 4), (4, 8), (8, 10)]),
    (3, 7, 2, [3, 4, 5, 6], [(3, 5), (5, 7)]),
    (8, -1, 500, [8, 9], [(8, 10)]),
    (2, 50, 0, list(range(2, 10)), [(2, 10)]),
    (12, -1, 3, [], []),
])
def test_select_range_and_slices(start, end, step, indexes, slices):
    plan = select(_items(10), start, end, step)
    assert [i.index for i in plan.items] == indexes
    assert plan.slices == slices


def test_key_is_stable_and_covers_model_prompt_record_params():
    item = _items(1)[0]
    base = item_key(item, "m", "v1", {"t": 0.2})
    assert base == item_key(item, "m", "v1", {"t": 0.2}) and len(base) == 32
    assert len({base, item_key(item, "m2", "v1", {"t": 0.2}), item_key(item, "m", "v2", {"t": 0.2}),
                item_key(item, "m", "v1", {"t": 0.3}), item_key(_items(2)[1], "m", "v1", {"t": 0.2})}) == 5


def test_a_folder_as_input_is_named_as_a_folder(tmp_path):
    with pytest.raises(DataError, match="is a folder, not an input file"):
        read_input(tmp_path)
    with pytest.raises(DataError, match="input file not found"):
        read_input(tmp_path / "nope.jsonl")


def test_a_runs_time_is_frozen_when_it_stops():
    import time

    from dp_cli.annotate.stats import Stats

    stats = Stats()
    stats.stop()
    frozen = stats.elapsed
    time.sleep(0.02)
    assert stats.elapsed == frozen

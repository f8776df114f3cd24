"""Caption quality on crafted records; the CMC figure; the documented [eval] table."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dp_cli.app import app
from dp_cli.eval.captions import evaluate_captions, names_label, still_names_replaced
from dp_cli.eval.cmc import draw_cmc

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_phrase_matching():
    assert names_label("A man in a Red  T-shirt.", "red t-shirt")
    assert not names_label("A man in a red shirt.", "red t-shirt")
    assert not names_label("A red cap and a blue t-shirt.", "red t-shirt")
    assert still_names_replaced("He wears blue jeans and a white shirt.", "blue jeans", ["black jeans"])
    assert not still_names_replaced("He wears black jeans.", "blue jeans", ["black jeans"])
    assert not still_names_replaced("He wears jeans.", "jeans", ["jeans"])


def _edit(eid, labels, replaced, base="A man in a blue shirt and black pants."):
    refs = [{"type": "uppercloth", "label": lab, "image": "/x.png", "replaced": rep} for lab, rep in zip(labels, replaced)]
    return {"id": eid, "base_description": base, "reference_attribute_list": refs, "source_dataset": ""}


def _write(path: Path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def crafted(tmp_path):
    edits = _write(tmp_path / "edits.jsonl", [
        _edit("a", ["red t-shirt"], ["blue shirt"]),
        _edit("b", ["red t-shirt", "white skirt"], ["blue shirt", "black pants"]),
        _edit("c", ["green coat"], ["blue shirt"]),
        _edit("d", ["green coat"], [None]),  # no annotation
        {**_edit("e", ["green coat"], [None]), "status": "failed"},  # failed verification: never annotated
    ])
    anns = _write(tmp_path / "annotations.jsonl", [
        {"key": "1", "id": "a", "description": "A man in a red t-shirt and black pants."},  # good
        {"key": "2", "id": "b", "description": "A man in a red t-shirt and black pants."},  # misses the skirt, keeps pants
        {"key": "3", "id": "c", "description": "A man in a blue shirt and black pants."},  # unchanged from base
        {"key": "4", "id": "zz", "description": "Orphan."},
    ])
    return anns, edits


def test_caption_quality_on_crafted_records(crafted):
    anns, edits = crafted
    q = evaluate_captions(anns, edits, source_captions=["A man in a blue shirt and black pants.", "A woman."])
    assert (q.num_annotations, q.num_joined, q.edits_without_annotation, q.annotations_without_edit) == (4, 3, 1, 1)
    assert q.failed_edits == 1  # counted apart: annotate leaves failed edits out by design
    assert q.share_names_all_attributes == pytest.approx(1 / 3)
    assert q.missing_attribute_ids == ["b", "c"]
    assert q.replaced_still_named_ids == ["b", "c"] and q.share_names_replaced == pytest.approx(2 / 3)
    assert q.unchanged_from_base == 1 and q.duplicates == 1
    assert q.descriptions.words_max == 9 and q.source_captions.count == 2
    assert q.new_words == ["red", "t-shirt"]  # the only description words the source never used
    assert q.words_outside_source_vocabulary == pytest.approx(4 / 27)


def test_cli_captions_json(crafted):
    anns, edits = crafted
    res = CliRunner().invoke(app, ["--json", "eval", "captions", str(anns), "--edits", str(edits)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["num_joined"] == 3 and out["source_captions"] is None  # no readable source dataset
    bad = anns.parent / "bad.jsonl"
    bad.write_text('{"id": "a"}\n')
    res = CliRunner().invoke(app, ["eval", "captions", str(bad), "--edits", str(edits)])
    assert res.exit_code == 1 and "bad.jsonl:1: missing field(s) description" in res.output


def test_cmc_figure_draws_curves():
    img = draw_cmc({"a": [10.0, 50.0, 90.0], "b": [5.0] * 60}, "t")
    assert img.size == (640, 420)
    assert len(set(img.getdata())) > 3  # axes, curves and text were drawn
    with pytest.raises(ValueError):
        draw_cmc({})


def test_documented_eval_table_loads_and_covers_every_field():
    from dp_cli import docs_build
    from dp_cli.eval.config import EvalConfig

    text = docs_build.table_toml("eval")
    table = tomllib.loads(text).get("eval", {})
    EvalConfig.model_validate(table)
    for name in EvalConfig.model_fields:
        assert f"{name} =" in text or f"# {name} =" in text, name

"""Export round trips, generated records with contiguous ids, IRRA's reader contract, safe overwrite."""

from __future__ import annotations

import json
import os

import pytest

from dp_cli.data.loading import load_dataset
from dp_cli.errors import DataError, UsageError
from dp_cli.export import export_dataset, load_generated

FORMATS = ["cuhk-pedes", "icfg-pedes", "rstpreid", "native"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_same_format(tbps, tmp_path, fmt):
    src = load_dataset(tbps(fmt))
    result = export_dataset(src, fmt, tmp_path / "out")
    again = load_dataset(tmp_path / "out")
    assert again.records == src.records
    assert again.counts() == src.counts() == result.counts
    for rec in again.records:
        assert again.image_path(rec).read_bytes() == src.image_path(rec).read_bytes()


@pytest.mark.parametrize("target", ["cuhk-pedes", "icfg-pedes", "rstpreid"])
def test_native_to_tbps_keeps_what_the_format_carries(tbps, tmp_path, target):
    src = load_dataset(tbps("native"))
    export_dataset(src, target, tmp_path / target)
    back = load_dataset(tmp_path / target)
    # ids, parsing maps and extra are what TBPS formats cannot carry (docs/export.md).
    keep = lambda r: (f"imgs/{r.image}", r.person_id, r.split, r.captions)  # noqa: E731
    assert [(r.image, r.person_id, r.split, r.captions) for r in back.records] == [keep(r) for r in src.records]
    assert all(r.parsing is None and r.extra == {} for r in back.records)


@pytest.mark.parametrize("fmt", ["cuhk-pedes", "icfg-pedes", "rstpreid"])
def test_tbps_to_native_to_tbps_round_trip(tbps, tmp_path, fmt):
    src = load_dataset(tbps(fmt))
    export_dataset(src, "native", tmp_path / "native")
    export_dataset(load_dataset(tmp_path / "native"), fmt, tmp_path / "back")
    assert load_dataset(tmp_path / "back").records == src.records
    assert (tmp_path / "back" / src.records[0].image).is_file()


@pytest.mark.parametrize("fmt", ["cuhk-pedes", "icfg-pedes", "rstpreid"])
def test_generated_records_join_train_with_contiguous_ids(tbps, tmp_path, export_kit, fmt):
    root = tbps(fmt)
    ds = load_dataset(root)
    train = ds.split("train")
    sources = [(train[0].id, 0, "0__v0"), (train[1].id, 0, "0__v0"), (train[2].id, 1, "1__v0"),
               (train[3].id, 1, "1__v1"), (train[4].id, 2, "2__v0")]
    edits, _ = export_kit.write_edits(tmp_path / "edits", root, sources)
    gen = load_generated(edits, ds)
    result = export_dataset(ds, fmt, tmp_path / "out", gen)
    ids = export_kit.irra_contract(tmp_path / "out", fmt)
    assert ids["train"] == set(range(3 + 4))  # 3 persons + 4 variants, no gaps
    assert result.ids.first_new_id == 3 and result.ids.new_persons == 4
    out = load_dataset(tmp_path / "out")
    new = [r for r in out.records if r.image.startswith("imgs/generated/")]
    assert [r.person_id for r in new] == [3, 3, 4, 5, 6]
    assert new[0].captions == ["A person in a green coat, edit 0."]
    # val/test persons move up past the new identities: every person keeps a distinct id.
    assert {r.person_id for r in out.split("test")} == {2 + 4 + 1, 2 + 4 + 2}
    assert result.counts["train"] == {"images": 11, "persons": 7, "captions": 12 + 5}


def test_edits_without_annotation_are_skipped_or_use_base_description(tbps, tmp_path, export_kit):
    root = tbps("cuhk-pedes")
    ds = load_dataset(root)
    sources = [(ds.records[0].id, 0, "0__v0"), (ds.records[2].id, 1, "1__v0")]
    edits, _ = export_kit.write_edits(tmp_path / "e", root, sources, annotated={f"{ds.records[0].id}__e0"})
    gen = load_generated(edits, ds)
    assert (len(gen.records), gen.skipped) == (1, 1)
    gen = load_generated(edits, ds, use_base_description=True)
    assert gen.skipped == 0 and gen.records[1].captions == [f"base description of {ds.records[2].id}"]
    result = export_dataset(ds, "cuhk-pedes", tmp_path / "out", gen)
    assert export_kit.irra_contract(tmp_path / "out", "cuhk-pedes")["train"] == set(range(5))
    assert result.payload()["new_persons"] == 2


def test_edits_from_another_dataset_are_refused(tbps, tmp_path, export_kit):
    other = tbps("rstpreid")
    root = tbps("cuhk-pedes")
    edits, _ = export_kit.write_edits(tmp_path / "e", other, [("not-a-record", 0, "0__v0")])
    with pytest.raises(DataError, match=r"edits.jsonl:1: source_id 'not-a-record' is not in dataset"):
        load_generated(edits, load_dataset(root))


def test_edits_of_held_out_persons_are_refused(tbps, tmp_path, export_kit):
    root = tbps("cuhk-pedes")
    ds = load_dataset(root)
    train, test = ds.split("train"), ds.split("test")
    edits, _ = export_kit.write_edits(tmp_path / "e", root, [(train[0].id, 0, "0__v0"), (test[0].id, 9, "9__v0")])
    with pytest.raises(DataError, match=rf"edits.jsonl:2: edit .* was made from {test[0].id!r}, a test record"):
        load_generated(edits, ds)


def test_non_contiguous_native_ids_are_relabelled_for_tbps(tbps, tmp_path, export_kit):
    ds = load_dataset(tbps("native", train_pids=(0, 4, 9), test_pids=(2, 11)))
    result = export_dataset(ds, "cuhk-pedes", tmp_path / "out")
    assert result.ids.relabelled
    assert export_kit.irra_contract(tmp_path / "out", "cuhk-pedes")["train"] == {0, 1, 2}
    assert export_dataset(ds, "native", tmp_path / "nat").ids.relabelled is False


def test_icfg_refuses_val_records(tbps, tmp_path):
    ds = load_dataset(tbps("rstpreid"))
    with pytest.raises(DataError, match="split 'val' cannot be written as icfg-pedes"):
        export_dataset(ds, "icfg-pedes", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_link_mode_shares_the_image_files(tbps, tmp_path):
    ds = load_dataset(tbps("rstpreid"))
    result = export_dataset(ds, "rstpreid", tmp_path / "out", link=True)
    assert result.images.startswith("linked")
    src, dst = ds.image_path(ds.records[0]), tmp_path / "out" / ds.records[0].image
    assert os.path.samefile(src, dst)


def test_non_empty_output_is_refused_then_replaced_whole(tbps, tmp_path, kit):
    ds = load_dataset(tbps("cuhk-pedes"))
    out = tmp_path / "out"
    export_dataset(ds, "cuhk-pedes", out)
    (out / "keep.txt").write_text("mine")
    before = kit.tree_digest(out)
    with pytest.raises(DataError, match="folder is not empty"):
        export_dataset(ds, "cuhk-pedes", out)
    assert kit.tree_digest(out) == before
    export_dataset(ds, "cuhk-pedes", out, overwrite=True)  # an earlier export (it holds export.json)
    assert not (out / "keep.txt").exists() and (out / "reid_raw.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_overwrite_never_replaces_a_folder_dp_did_not_make(tbps, tmp_path, kit):
    ds = load_dataset(tbps("cuhk-pedes"))
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    before = kit.tree_digest(out)
    with pytest.raises(DataError, match=r"holds files dp did not write \(thesis.tex; no export.json\)"):
        export_dataset(ds, "cuhk-pedes", out, overwrite=True)
    assert kit.tree_digest(out) == before


def test_failed_export_leaves_previous_output_and_no_staging(tbps, tmp_path, kit):
    ds = load_dataset(tbps("cuhk-pedes"))
    out = tmp_path / "out"
    export_dataset(ds, "cuhk-pedes", out)
    before = kit.tree_digest(out)
    ds.image_path(ds.records[-1]).unlink()
    with pytest.raises(DataError, match="not found"):
        export_dataset(ds, "cuhk-pedes", out, overwrite=True)
    assert kit.tree_digest(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_output_cannot_replace_the_input(tbps):
    root = tbps("cuhk-pedes")
    with pytest.raises(UsageError, match="contains --dataset"):
        export_dataset(load_dataset(root), "native", root.parent, overwrite=True)


def test_cuhk_writes_processed_tokens_and_one_based_ids(tbps, tmp_path):
    ds = load_dataset(tbps("native"))
    export_dataset(ds, "cuhk-pedes", tmp_path / "out")
    rows = json.loads((tmp_path / "out" / "reid_raw.json").read_text())
    assert rows[0]["id"] == 1 and rows[0]["file_path"] == "images/p0_0.png"
    assert rows[0]["processed_tokens"][0][:3] == ["a", "man", "0"]


def test_missing_edit_manifest_is_named_before_its_annotations(tbps, tmp_path):
    """A wrong --edits path says so, instead of 'annotations not found' for the file beside it."""
    ds = load_dataset(tbps("native"))
    with pytest.raises(DataError, match=r"nope\.jsonl: edit manifest not found \(pass --edits"):
        load_generated(tmp_path / "nope.jsonl", ds)
    with pytest.raises(DataError, match=r"nope\.jsonl: edit manifest not found"):
        load_generated(tmp_path / "nope.jsonl", ds, use_base_description=True)


def test_edits_that_failed_verification_are_left_out_and_counted(tbps, tmp_path, export_kit):
    root = tbps("cuhk-pedes")
    ds = load_dataset(root)
    sources = [(ds.records[0].id, 0, "0__v0"), (ds.records[1].id, 0, "0__v0"), (ds.records[2].id, 1, "1__v0")]
    edits, _ = export_kit.write_edits(tmp_path / "e", root, sources, failed={1})
    gen = load_generated(edits, ds)
    assert (len(gen.records), gen.failed) == (2, 1)
    assert f"{ds.records[1].id}__e1" not in {r.id for r in gen.records}
    kept = load_generated(edits, ds, include_failed_edits=True)
    assert (len(kept.records), kept.failed) == (3, 0)



def test_a_failed_edit_of_a_held_out_person_is_left_out_not_refused(tbps, tmp_path, export_kit):
    root = tbps("cuhk-pedes")
    ds = load_dataset(root)
    edits, _ = export_kit.write_edits(tmp_path / "e", root, [(ds.split("train")[0].id, 0, "0__v0"),
                                                              (ds.split("test")[0].id, 9, "9__v0")])
    lines = edits.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "status": "failed"})  # the verifier failed it: never exported
    edits.write_text("\n".join(lines) + "\n")
    gen = load_generated(edits, ds)
    assert len(gen.records) == 1 and gen.failed == 1

"""The TBPS-CLIP layout: {train,val,test}_reid.json read the way TBPS-CLIP's caption_dataset.py reads them."""

from __future__ import annotations

import json
import os

import pytest

from dp_cli.data.formats import FORMAT_NAMES, get_format
from dp_cli.data.loading import load_dataset
from dp_cli.errors import DataError
from dp_cli.export import export_dataset


def tbps_clip_reader(anno_dir, image_dir, split: str) -> tuple[list[tuple[str, str, int]], list[int]]:
    """What TBPS-CLIP's ps_train_dataset / ps_eval_dataset do: (image path, caption, person) pairs and image ids."""
    anns = json.load(open(os.path.join(anno_dir, split + "_reid.json")))
    pairs, ids = [], []
    for ann in anns:
        image_path = os.path.join(image_dir, ann["file_path"])
        assert os.path.isfile(image_path)
        ids.append(ann["id"])
        captions_bt = ann.get("captions_bt", [""] * len(ann["captions"]))
        for caption, _ in zip(ann["captions"], captions_bt):
            pairs.append((image_path, caption, ann["id"]))
    return pairs, ids


def write_tbps_clip(root, kit, with_bt: bool = False):
    """A TBPS-CLIP folder built from the shared sample entries (ids from 0, images under imgs/)."""
    files: dict[str, list[dict]] = {}
    for i, e in enumerate(kit.sample_entries("rstpreid")):
        row = {"file_path": e["path"], "id": e["pid"], "captions": e["captions"]}
        if with_bt:
            row["captions_bt"] = [c.upper() for c in e["captions"]]
        files.setdefault(e["split"], []).append(row)
        kit.tiny_image(root / "imgs" / e["path"], color=(10 * i % 255, 100, 50))
    for split, rows in files.items():
        (root / f"{split}_reid.json").write_text(json.dumps(rows), encoding="utf-8")
    return root


def test_registered_and_detected_from_folder_and_any_split_file(kit, tmp_path):
    assert "tbps-clip" in FORMAT_NAMES and get_format("TBPS_CLIP").name == "tbps-clip"
    root = write_tbps_clip(tmp_path / "ds", kit)
    ds = load_dataset(root)
    assert ds.source_format == "tbps-clip"
    assert load_dataset(root / "test_reid.json").records == ds.records == load_dataset(root, "tbps-clip").records
    counts = ds.counts()
    assert counts["train"] == {"images": 6, "persons": 3, "captions": 12}
    assert counts["test"]["persons"] == 2 and counts["val"]["persons"] == 1
    first = ds.records[0]
    assert (first.image, first.person_id, first.split) == ("imgs/train/0000/0000_0.jpg", 0, "train")
    assert ds.image_path(first).is_file()


@pytest.mark.parametrize("source", ["tbps-clip", "cuhk-pedes", "native"])
def test_export_is_read_by_tbps_clip_and_round_trips(tbps, kit, tmp_path, source):
    root = write_tbps_clip(tmp_path / "src", kit) if source == "tbps-clip" else tbps(source)
    src = load_dataset(root)
    result = export_dataset(src, "tbps-clip", tmp_path / "out")
    out = tmp_path / "out"
    assert result.annotation_file == out / "train_reid.json"
    assert result.train_with == {"TBPS-CLIP anno_dir": str(out), "TBPS-CLIP image_dir": str(out / "imgs")}
    train, train_ids = tbps_clip_reader(out, out / "imgs", "train")
    test, test_ids = tbps_clip_reader(out, out / "imgs", "test")
    assert len(train) == src.counts()["train"]["captions"] and len(test) == src.counts()["test"]["captions"]
    assert sorted(set(train_ids)) == list(range(3)) and not set(test_ids) & set(train_ids)
    entry = json.loads((out / "train_reid.json").read_text())[0]
    assert set(entry) == {"file_path", "id", "captions"}
    back = load_dataset(out)
    # One file per split: records come back grouped by split, each with its person, captions and pixels.
    keep = lambda ds, r: (r.split, r.person_id, r.captions, ds.image_path(r).read_bytes())  # noqa: E731
    assert sorted(keep(back, r) for r in back.records) == sorted(keep(src, r) for r in src.records)
    if source == "tbps-clip":
        assert back.records == src.records


def test_back_translated_captions_survive_and_val_only_when_present(kit, tmp_path):
    src = load_dataset(write_tbps_clip(tmp_path / "src", kit, with_bt=True))
    assert src.records[0].extra == {"captions_bt": [c.upper() for c in src.records[0].captions]}
    no_val = type(src)(src.root, [r for r in src.records if r.split != "val"], name=src.name,
                       source_format=src.source_format)
    export_dataset(no_val, "tbps-clip", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("*_reid.json")) == ["test_reid.json", "train_reid.json"]
    rows = json.loads((tmp_path / "out" / "train_reid.json").read_text())
    assert rows[0]["captions_bt"] == [c.upper() for c in rows[0]["captions"]]


def test_bad_entry_names_the_file_and_record(kit, tmp_path):
    root = write_tbps_clip(tmp_path / "ds", kit)
    rows = json.loads((root / "test_reid.json").read_text())
    del rows[1]["id"]
    (root / "test_reid.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"test_reid.json: record 1: missing field\(s\) id"):
        load_dataset(root)

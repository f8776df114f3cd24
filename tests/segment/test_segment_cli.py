"""`dp segment` with a tiny random SegFormer loaded through the user's path (a saved model folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dp_cli.data.attributes import ATR_LABELS, ATTRIBUTE_TYPES, attribute_mask
from dp_cli.data.formats.native import load_native


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_maps_have_image_size_valid_labels_and_a_native_dataset(dp, dataset, segformer_dir, tmp_path):
    out = tmp_path / "out"
    r = dp("--json", "segment", "--dataset", dataset, "--out", out, "--model", segformer_dir, "--batch-size", 2)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["images"], summary["written"], summary["skipped"]) == (5, 5, 0)
    assert set(summary["type_share"]) == set(ATTRIBUTE_TYPES)
    ds = load_native(out)
    src = load_native(dataset)
    assert [r.id for r in ds.records] == [r.id for r in src.records]
    assert ds.label_set == "atr"
    found = {}
    for rec, orig in zip(ds.records, src.records):
        image = Image.open(ds.image_path(rec))
        assert os.path.samefile(ds.image_path(rec), src.image_path(orig))  # hard link, not a copy
        parsing = Image.open(ds.parsing_path(rec))
        assert parsing.mode == "L" and parsing.size == image.size
        ids = np.asarray(parsing)
        assert ids.max() < len(ATR_LABELS)
        found[rec.id] = {t for t in ATTRIBUTE_TYPES if attribute_mask(ids, t, "atr").any()}
        assert (rec.captions, rec.person_id, rec.split) == (orig.captions, orig.person_id, orig.split)
    for t, share in summary["type_share"].items():
        assert share == pytest.approx(sum(t in f for f in found.values()) / 5)


def test_resume_skips_finished_images(dp, dataset, segformer_dir, tmp_path):
    out = tmp_path / "out"
    assert dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir).exit_code == 0
    maps = sorted((out / "parsing").rglob("*.png"))
    removed = maps[1]
    removed.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in maps if p != removed}
    r = dp("--json", "segment", "-d", dataset, "-o", out, "--model", segformer_dir)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["written"], summary["skipped"]) == (1, 4)
    assert removed.exists() and {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert len(load_native(out).records) == 5


def test_other_settings_on_the_same_out_are_refused_then_overwrite(dp, dataset, segformer_dir, tmp_path):
    out = tmp_path / "out"
    assert dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir).exit_code == 0
    before = (out / "annotations.jsonl").read_bytes()
    line = one_error_line(dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--cleanup"))
    assert "made with cleanup = False" in line and "--overwrite" in line
    assert (out / "annotations.jsonl").read_bytes() == before
    r = dp("--json", "segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--cleanup", "--overwrite")
    assert r.exit_code == 0 and json.loads(r.stdout)["written"] == 5
    assert json.loads((out / "segment.json").read_text())["cleanup"] is True


def test_any_supported_format_and_settings_from_toml(dp, tbps, segformer_dir, tmp_path):
    root = tbps("cuhk-pedes", persons=1, per_person=1)
    cfg = tmp_path / "dp.toml"
    cfg.write_text(f'[segment]\nmodel = "{segformer_dir}"\nbatch_size = 3\ncleanup = true\n')
    r = dp("--config", cfg, "--json", "segment", "-d", root, "-o", tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 0, r.output
    ds = load_native(tmp_path / "out")
    assert len(ds.records) == json.loads(r.stdout)["images"] > 0
    assert all(Image.open(ds.parsing_path(x)).size == Image.open(ds.image_path(x)).size for x in ds.records)
    assert json.loads((tmp_path / "out" / "segment.json").read_text())["min_island_pixels"] == 32


def test_model_without_segmentation_head(dp, dataset, seg_kit, tmp_path):
    plain = seg_kit.tiny_segformer(tmp_path / "plain", head=False)
    line = one_error_line(dp("segment", "-d", dataset, "-o", tmp_path / "out", "--model", plain))
    assert str(plain) in line and "no trained segmentation head" in line
    assert not (tmp_path / "out" / "annotations.jsonl").exists()


def test_model_of_another_kind(dp, dataset, tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                            num_attention_heads=2, image_size=16, patch_size=8))
    clip.save_pretrained(tmp_path / "clip")
    line = one_error_line(dp("segment", "-d", dataset, "-o", tmp_path / "out", "--model", tmp_path / "clip"))
    assert "'clip_vision_model' model has no semantic-segmentation head" in line


def test_missing_model_folder(dp, dataset, tmp_path):
    line = one_error_line(dp("segment", "-d", dataset, "-o", tmp_path / "out", "--model", tmp_path / "nope",
                             env={"HF_HUB_OFFLINE": "1"}))
    assert "nope: model folder not found" in line


def test_model_labels_outside_our_set_then_a_custom_table(dp, dataset, seg_kit, tmp_path):
    labels = ("background", "hair", "tail", "upper-clothes")
    model = seg_kit.tiny_segformer(tmp_path / "odd", labels=labels)
    line = one_error_line(dp("segment", "-d", dataset, "-o", tmp_path / "out", "--model", model))
    assert "2='Tail'" in line and "custom" in line
    cfg = tmp_path / "dp.toml"
    cfg.write_text('[segment]\nlabel_set = "custom"\n[segment.labels]\n0 = "background"\n1 = "hair"\n'
                   '2 = "background"\n3 = "upper-clothes"\n')
    r = dp("--config", cfg, "segment", "-d", dataset, "-o", tmp_path / "out", "--model", model)
    assert r.exit_code == 0, r.output
    ids = np.concatenate([np.asarray(Image.open(p)).ravel() for p in (tmp_path / "out" / "parsing").rglob("*.png")])
    assert set(np.unique(ids)) <= {0, 2, 4}


def test_unreadable_image_keeps_finished_work(dp, dataset, segformer_dir, tmp_path):
    out = tmp_path / "out"
    assert dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir).exit_code == 0
    before = (out / "annotations.jsonl").read_bytes()
    bad = dataset / "imgs" / "004.png"
    bad.write_bytes(b"not a png")
    (out / "parsing" / "imgs" / "004.png").unlink()
    line = one_error_line(dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir))
    assert "004.png: cannot read image" in line
    assert (out / "annotations.jsonl").read_bytes() == before
    assert len(list((out / "parsing").rglob("*.png"))) == 4


def test_interrupted_run_is_resumed_only_with_its_own_settings(dp, dataset, segformer_dir, tmp_path):
    out = tmp_path / "out"
    bad = dataset / "imgs" / "004.png"
    good = bad.read_bytes()
    bad.write_bytes(b"not a png")  # the run stops at this image, after the first four were written
    assert dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--batch-size", "1").exit_code == 1
    assert len(list((out / "parsing").rglob("*.png"))) == 4
    assert not (out / "annotations.jsonl").exists() and json.loads((out / "segment.json").read_text())["complete"] is False
    bad.write_bytes(good)
    line = one_error_line(dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--cleanup"))
    assert "made with cleanup = False" in line
    r = dp("--json", "segment", "-d", dataset, "-o", out, "--model", segformer_dir)
    assert r.exit_code == 0, r.output
    assert (json.loads(r.stdout)["written"], json.loads(r.stdout)["skipped"]) == (1, 4)
    assert json.loads((out / "segment.json").read_text())["complete"] is True and len(load_native(out).records) == 5


def test_a_run_stopped_before_its_first_map_does_not_bind_the_settings(dp, dataset, segformer_dir, tmp_path):
    out = tmp_path / "out"
    bad = dataset / "imgs" / "000.png"
    good = bad.read_bytes()
    bad.write_bytes(b"not a png")
    assert dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--batch-size", "1").exit_code == 1
    last = dataset / "imgs" / "004.png"
    last_good = last.read_bytes()
    bad.write_bytes(good)
    last.write_bytes(b"not a png")  # a second run with other settings stops after four maps
    args = ("segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--batch-size", "1")
    assert dp(*args, "--cleanup").exit_code == 1
    assert json.loads((out / "segment.json").read_text())["cleanup"] is True
    last.write_bytes(last_good)
    assert "made with cleanup = True" in one_error_line(dp(*args))  # the first run's settings are not resumed
    r = dp(*args, "--cleanup")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "segment.json").read_text())["complete"] is True


def test_an_interrupted_overwrite_is_not_resumed_as_if_done(dp, dataset, segformer_dir, tmp_path):
    out = tmp_path / "out"
    assert dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir).exit_code == 0
    last = dataset / "imgs" / "004.png"
    good = last.read_bytes()
    last.write_bytes(b"not a png")
    args = ("segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--batch-size", "1", "--cleanup")
    assert dp(*args, "--overwrite").exit_code == 1  # four maps redone with clean-up, the fifth is old
    last.write_bytes(good)
    line = one_error_line(dp(*args))
    assert "interrupted --overwrite" in line and "--overwrite" in line
    assert dp(*args, "--overwrite").exit_code == 0


def test_usage_errors(dp, dataset, tmp_path):
    r = dp("segment", "-d", dataset)
    assert r.exit_code == 2 and "--out" in r.output
    r = dp("segment", "-d", dataset, "-o", dataset)
    assert r.exit_code == 1 and "source dataset's folder" in r.output
    r = dp("segment", "-d", dataset, "-o", tmp_path / "o", "--device", "tpu")
    assert r.exit_code == 2 and "device" in r.output and "tpu" in r.output  # a bad flag value: usage error


@pytest.mark.slow
def test_torchrun_splits_images_between_two_processes(dataset, segformer_dir, tmp_path, subprocess_env):
    import subprocess
    import sys

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "dp_cli", "--json",
           "segment", "-d", str(dataset), "-o", str(out), "--model", str(segformer_dir), "--device", "cpu"]
    env = subprocess_env(cpu=True, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])  # only the main process prints
    assert proc.stdout.count('"images"') == 1 and summary["written"] == 5
    ds = load_native(out)
    assert all(Image.open(ds.parsing_path(r)).size == Image.open(ds.image_path(r)).size for r in ds.records)


def test_a_record_being_written_by_the_main_process_is_not_a_foreign_file(dataset, tmp_path):
    from dp_cli.data.loading import load_dataset
    from dp_cli.segment.output import check_out

    out = tmp_path / "out"
    (out / "parsing").mkdir(parents=True)
    (out / ".segment.json.k2j3.tmp.json").write_text("{")  # another rank mid-write (no barrier before the check)
    assert check_out(load_dataset(dataset), out, {"source": "model"}, overwrite=False) is False
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="notes.txt"):
        check_out(load_dataset(dataset), out, {"source": "model"}, overwrite=False)


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_model_that_cannot_load_leaves_nothing_behind(dp, dataset, seg_kit, segformer_dir, tmp_path):
    plain = seg_kit.tiny_segformer(tmp_path / "plain", head=False)
    out = tmp_path / "s9"
    assert "no trained segmentation head" in one_error_line(dp("segment", "-d", dataset, "-o", out, "--model", plain))
    assert not out.exists()  # no half-made folder with a segment.json that looks like output
    assert dp("segment", "-d", dataset, "-o", out, "--model", segformer_dir).exit_code == 0
    done = _snapshot(out)
    one_error_line(dp("segment", "-d", dataset, "-o", out, "--model", plain, "--overwrite"))
    assert _snapshot(out) == done  # the finished output and its record are untouched
    r = dp("--json", "segment", "-d", dataset, "-o", out, "--model", segformer_dir)
    assert r.exit_code == 0, r.output
    assert (json.loads(r.stdout)["written"], json.loads(r.stdout)["skipped"]) == (0, 5)


def test_a_run_that_fails_before_its_first_map_leaves_no_new_folder(dp, dataset, segformer_dir, tmp_path):
    bad = dataset / "imgs" / "000.png"
    good = bad.read_bytes()
    bad.write_bytes(b"not a png")
    out = tmp_path / "new" / "s9"
    args = ("segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--batch-size", "1")
    assert "000.png: cannot read image" in one_error_line(dp(*args))
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    one_error_line(dp("segment", "-d", dataset, "-o", mine, "--model", segformer_dir))
    assert mine.is_dir() and not any(mine.iterdir())  # a folder the user made stays, empty as it was
    bad.write_bytes(good)
    r = dp("--json", "segment", "-d", dataset, "-o", out, "--model", segformer_dir, "--cleanup")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["written"] == 5 and "cleanup_removed" in json.loads(r.stdout)

"""A path the system refuses (a folder where a file is expected, a file where a folder is expected)
is one line naming the path, exit 1, no traceback, and nothing already there is changed."""

from __future__ import annotations

import json


def test_annotate_output_is_a_folder(dp, tmp_path):
    edits = tmp_path / "edits.jsonl"
    edits.write_text(json.dumps({"id": "a", "base_description": "A man in a red shirt.",
                                 "reference_attribute_list": ["blue shirt"]}) + "\n")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    result = dp("annotate", "-i", edits, "-o", folder, "--backend", "offline")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr and "IsADirectoryError" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and str(folder) in lines[0] and "directory" in lines[0].lower()
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    assert (folder / "keep.txt").read_text() == "mine"


def test_toy_out_under_a_file(dp, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    result = dp("toy", "--out", blocker / "world", "--persons", "1", "--height", "32", "--width", "16")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and str(blocker) in lines[0] and "is a file, where a folder is needed" in lines[0]
    assert blocker.read_text() == "mine"


def test_a_sheet_that_cannot_be_written_is_refused_before_the_world_is_made_or_replaced(dp, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    small = ["--persons", "1", "--height", "32", "--width", "16", "--catalog-per-type", "1"]
    result = dp("toy", "--out", tmp_path / "new", *small, "--sheet", blocker / "s.png")
    assert result.exit_code == 1 and not (tmp_path / "new").exists()
    assert f"--sheet {blocker / 's.png'}: {blocker} is a file, not a folder" in result.stderr
    assert dp("toy", "--out", tmp_path / "old", *small).exit_code == 0
    before = {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()}
    for sheet in (blocker / "s.png", tmp_path):  # under a file; a folder
        result = dp("toy", "--out", tmp_path / "old", *small, "--seed", "5", "--overwrite", "--sheet", sheet)
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()} == before


def test_a_full_disk_during_export_names_the_file_and_leaves_nothing(dp, tbps, tmp_path, monkeypatch):
    import errno
    import shutil

    def full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as sendfile raises it: no file name

    dataset = tbps("cuhk-pedes")
    monkeypatch.setattr(shutil, "copyfile", full)
    result = dp("export", "-d", dataset, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path}/.out.tmp-") and "/imgs/" in lines[0]
    assert "No space left on device" in lines[0]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_an_export_removes_the_staging_folder_a_killed_export_left(dp, tbps, tmp_path):
    stale = tmp_path / ".out.tmp-abcd1234"
    (stale / "imgs").mkdir(parents=True)
    (stale / "imgs" / "x.jpg").write_bytes(b"half")
    other = tmp_path / ".other.tmp-abcd1234"  # another output's: not ours to remove
    other.mkdir()
    result = dp("export", "-d", tbps("cuhk-pedes"), "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert not stale.exists() and other.exists() and (tmp_path / "out").is_dir()

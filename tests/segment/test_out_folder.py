"""`--out` is never inside the source dataset, and a folder holding other files is not written into
(dp segment would replace its annotations.jsonl); an interrupted run (only maps so far) still resumes."""

from __future__ import annotations

import json
import shutil


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_out_inside_the_source_is_refused(dp, dataset):
    before = _files(dataset)
    r = dp("segment", "import", "-d", dataset, "-o", dataset / "imgs" / "seg")
    assert r.exit_code == 1
    assert "inside the source dataset's folder" in r.output and "Traceback" not in r.output
    assert _files(dataset) == before


def test_folder_with_other_files_is_refused_unless_overwrite(dp, dataset, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "annotations.jsonl").write_text('{"not": "from dp segment"}\n')
    r = dp("segment", "import", "-d", dataset, "-o", out)
    assert r.exit_code == 1
    assert "annotations.jsonl" in r.output and "--overwrite" in r.output
    assert (out / "annotations.jsonl").read_text() == '{"not": "from dp segment"}\n'
    assert _files(out) == ["annotations.jsonl"]
    r = dp("segment", "import", "-d", dataset, "-o", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert len((out / "annotations.jsonl").read_text().splitlines()) == 5


def test_interrupted_run_with_only_maps_resumes(dp, dataset, tmp_path):
    out = tmp_path / "seg"
    assert dp("segment", "import", "-d", dataset, "-o", out).exit_code == 0
    for name in ("annotations.jsonl", "dataset.json", "segment.json"):
        (out / name).unlink()
    shutil.rmtree(out / "images")  # what a run stopped before its end leaves: parsing/ only
    r = dp("--json", "segment", "import", "-d", dataset, "-o", out)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["images"] == 5
    assert (out / "segment.json").is_file()


def test_out_that_is_a_file_is_refused_untouched(dp, dataset, tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    r = dp("segment", "import", "-d", dataset, "-o", out, "--overwrite")
    assert r.exit_code == 1
    assert "exists and is not a folder" in r.output and "Traceback" not in r.output
    assert out.read_text() == "mine"

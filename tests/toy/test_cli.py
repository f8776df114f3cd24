"""`dp toy` through Typer's runner: outputs, --json, config file, and bad inputs."""

import json

import pytest
from typer.testing import CliRunner

from dp_cli.app import app
from dp_cli.data.formats.native import load_native
from dp_cli.fsutil import read_jsonl

TINY_FLAGS = ["--persons", "3", "--height", "64", "--width", "32", "--images-per-person", "2",
              "--catalog-per-type", "1"]


def run(*args, env=None):
    return CliRunner().invoke(app, list(args), env=env)


def test_toy_writes_dataset_and_json_summary(tmp_path):
    out = tmp_path / "world"
    result = run("--json", "toy", "--out", str(out), *TINY_FLAGS, "--seed", "4")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["persons"] == 3 and summary["images"] == 6 and summary["catalog_items"] == 6
    assert sum(s["images"] for s in summary["splits"].values()) == 6
    ds = load_native(out)
    assert len(ds.records) == 6 and all(ds.image_path(r).exists() and ds.parsing_path(r).exists() for r in ds.records)
    entries = [row for _, row in read_jsonl(out / "catalog" / "catalog.jsonl")]
    assert {e["type"] for e in entries} == {"hair", "uppercloth", "bottomcloth", "shoes", "bag", "hat"}
    assert all((out / "catalog" / e["image"]).exists() for e in entries)


def test_toy_reads_the_project_file_and_flags_win(tmp_path):
    (tmp_path / "dp.toml").write_text('[toy]\nout = "fromtoml"\npersons = 2\nheight = 64\nwidth = 32\n'
                                      'catalog_per_type = 0\nimages_per_person = 1\n')
    result = run("--config", str(tmp_path / "dp.toml"), "--json", "toy", "--persons", "4")
    assert result.exit_code == 0, result.output
    ds = load_native(tmp_path / "fromtoml")  # relative to the TOML file's folder
    assert len({r.person_id for r in ds.records}) == 4 and len(ds.records) == 4
    assert json.loads(result.stdout)["catalog_items"] == 0


@pytest.mark.parametrize("flags, needle", [
    (["--persons", "0"], "persons"),
    (["--height", "0"], "height"),
    (["--width", "-3"], "width"),
    (["--test-fraction", "1.0"], "test_fraction"),
    (["--images-per-person", "0"], "images_per_person"),
])
def test_bad_values_are_usage_errors_with_one_line(tmp_path, flags, needle):
    out = tmp_path / "w"
    result = run("toy", "--out", str(out), *TINY_FLAGS[2:], *flags)
    assert result.exit_code == 2  # a bad option value, like click's own ('--persons abc')
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.stderr
    assert "Traceback" not in result.output and not out.exists()


def test_non_empty_out_is_refused_untouched_then_overwritten(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = run("toy", "--out", str(out), *TINY_FLAGS)
    assert result.exit_code == 1 and "not empty" in result.stderr and "--overwrite" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"
    result = run("toy", "--out", str(out), *TINY_FLAGS, "--overwrite")  # not a toy world: still refused
    assert result.exit_code == 1 and "holds no toy world" in result.stderr
    assert (out / "notes.txt").read_text() == "keep me"
    (out / "notes.txt").unlink()
    assert run("toy", "--out", str(out), *TINY_FLAGS).exit_code == 0
    result = run("toy", "--out", str(out), *TINY_FLAGS, "--seed", "4", "--overwrite")  # an earlier toy world
    assert result.exit_code == 0, result.output
    assert (out / "annotations.jsonl").exists()


def test_missing_out_is_a_usage_error():
    result = run("toy", "--persons", "2")
    assert result.exit_code == 2 and "--out" in result.stderr


def test_help_lists_the_options():
    result = run("toy", "--help")
    assert result.exit_code == 0
    for option in ("--out", "--persons", "--seed", "--height", "--width", "--images-per-person",
                   "--test-fraction", "--catalog-per-type", "--overwrite"):
        assert option in result.stdout


def test_sheet_option_writes_a_sample_sheet(tmp_path):
    from PIL import Image

    out, sheet = tmp_path / "w", tmp_path / "sheet.png"
    result = run("--json", "toy", "--out", str(out), *TINY_FLAGS, "--sheet", str(sheet))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sheet"] == str(sheet)
    image = Image.open(sheet)
    # 3 persons side by side (image | parsing), then one row of 6 catalog items of 32 px
    assert image.mode == "RGB" and image.width >= 3 * 2 * 32 and image.height > 64 + 32


def test_out_may_be_the_current_empty_folder(tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = run("toy", "--out", ".", *TINY_FLAGS)
    assert result.exit_code == 0, result.output
    assert (here / "annotations.jsonl").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["here"]
    result = run("toy", "--out", ".", *TINY_FLAGS, "--seed", "9", "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(load_native(here).records) == 6 and sorted(p.name for p in tmp_path.iterdir()) == ["here"]

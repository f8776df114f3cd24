"""Exports land where the trainers look (IRRA's --root_dir/<dataset folder>), and every image decodes first."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from dp_cli.data.loading import load_dataset
from dp_cli.errors import DataError
from dp_cli.export import export_dataset

IRRA_FOLDER = {"cuhk-pedes": "CUHK-PEDES", "icfg-pedes": "ICFG-PEDES", "rstpreid": "RSTPReid"}


def _cli(*args: str):
    from typer.testing import CliRunner

    from dp_cli.app import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("fmt", sorted(IRRA_FOLDER))
def test_summary_gives_the_root_dir_irra_reads(tbps, tmp_path, export_kit, fmt):
    src = tbps("native")
    out = tmp_path / "data" / IRRA_FOLDER[fmt]
    result = _cli("--json", "export", "--dataset", str(src), "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    train_with = payload["train_with"]
    assert train_with == {"IRRA --root_dir": str(tmp_path / "data"), "IRRA --dataset_name": IRRA_FOLDER[fmt]}
    assert payload["warnings"] == []
    # IRRA: dataset_dir = op.join(root_dir, <dataset folder>), __factory[--dataset_name].
    dataset_dir = Path(os.path.join(train_with["IRRA --root_dir"], train_with["IRRA --dataset_name"]))
    ids = export_kit.irra_contract(dataset_dir, fmt)
    assert ids["train"] == {0, 1, 2}


def test_a_folder_irra_would_not_find_is_named_with_the_fix(tbps, tmp_path):
    src = tbps("cuhk-pedes")
    result = _cli("export", "--dataset", str(src), "--format", "cuhk-pedes", "--out", str(tmp_path / "v1"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (f"note: IRRA reads {tmp_path / 'CUHK-PEDES'}, not {tmp_path / 'v1'}: rename the folder to "
            f"CUHK-PEDES, or export again with --out {tmp_path / 'CUHK-PEDES'}") in text
    assert "--root_dir" not in text  # no setting that would not work


def test_native_has_no_trainer_settings(tbps, tmp_path):
    result = export_dataset(load_dataset(tbps("native")), "native", tmp_path / "out")
    assert result.train_with == {} and result.warnings == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
@pytest.mark.parametrize("link", [False, True])
def test_an_image_that_does_not_decode_stops_the_export_before_writing(tbps, tmp_path, damage, link):
    root = tbps("rstpreid")
    ds = load_dataset(root)
    bad = ds.records[3]
    path = ds.image_path(bad)
    if damage == "garbage":
        path.write_bytes(b"this is not a JPEG at all")
    elif damage == "truncated":
        Image.new("RGB", (64, 128), (9, 99, 199)).save(path, quality=95)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"^record '{bad.id}': image {path} does not decode \(.+\)$") as err:
        export_dataset(ds, "cuhk-pedes", tmp_path / "out", link=link)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rstpreid"]  # no output, no staging folder


def test_undecodable_image_is_a_one_line_cli_error(tbps, tmp_path):
    root = tbps("cuhk-pedes")
    ds = load_dataset(root)
    ds.image_path(ds.records[0]).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = _cli("export", "--dataset", str(root), "--out", str(tmp_path / "CUHK-PEDES"))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert lines[0].startswith(f"error: record '{ds.records[0].id}': image ") and "does not decode" in lines[0]
    assert not (tmp_path / "CUHK-PEDES").exists()

"""`dp segment import` follows no link out of the dataset: a linked map folder or image is one error line
and nothing is written; links that stay inside the dataset are followed."""

from __future__ import annotations

import os
import shutil


def _one_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_map_folder_linked_from_outside_is_refused(dp, dataset, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.move(dataset / "maps", outside)
    (dataset / "maps").symlink_to(outside, target_is_directory=True)
    line = _one_error(dp("segment", "import", "-d", dataset, "-o", tmp_path / "out"))
    assert "record" not in line and "image 'imgs/000.png' parsing map" in line
    assert f"leads to {outside}/000.png, outside the folder {dataset}" in line
    assert not (tmp_path / "out" / "parsing").exists() and not (tmp_path / "out" / "annotations.jsonl").exists()


def test_an_image_linked_from_outside_is_refused(dp, dataset, tmp_path):
    secret = tmp_path / "secret.png"
    shutil.move(dataset / "imgs" / "000.png", secret)
    os.symlink(secret, dataset / "imgs" / "000.png")
    line = _one_error(dp("segment", "import", "-d", dataset, "-o", tmp_path / "out"))
    assert f"image 'imgs/000.png': {dataset}/imgs/000.png leads to {secret}, outside the folder" in line
    assert not (tmp_path / "out" / "images").exists()


def test_links_inside_the_dataset_are_followed_and_never_copied_as_links(dp, dataset, tmp_path):
    real = dataset / "store" / "000.png"
    real.parent.mkdir()
    shutil.move(dataset / "imgs" / "000.png", real)
    os.symlink("../store/000.png", dataset / "imgs" / "000.png")
    result = dp("segment", "import", "-d", dataset, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    placed = tmp_path / "out" / "images" / "imgs" / "000.png"
    assert not placed.is_symlink() and os.path.samefile(placed, real)

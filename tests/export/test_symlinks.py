"""Export copies and links only files inside the dataset folder, after following symlinks."""

from __future__ import annotations

import os
import shutil

import pytest

from dp_cli.data.dataset import resolve_inside
from dp_cli.data.loading import load_dataset
from dp_cli.errors import DataError
from dp_cli.export import export_dataset


def test_a_parsing_folder_linked_from_outside_is_refused(tbps, tmp_path):
    root = tbps("native")
    outside = tmp_path / "elsewhere"
    shutil.move(root / "parsing", outside)
    (root / "parsing").symlink_to(outside, target_is_directory=True)
    ds = load_dataset(root)
    with pytest.raises(DataError, match=r"record 'p0_0' parsing map: .*/parsing/p0_0.png leads to "
                                        rf"{outside}/p0_0.png, outside the folder {root}"):
        export_dataset(ds, "native", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.parametrize("link", [False, True])
def test_an_image_linked_from_outside_is_neither_copied_nor_linked(tbps, tmp_path, link):
    root = tbps("rstpreid")
    ds = load_dataset(root)
    secret = tmp_path / "secret.txt"
    secret.write_text("not an image of this dataset")
    image = root / ds.records[0].image
    image.unlink()
    image.symlink_to(secret)
    with pytest.raises(DataError, match=rf"record '{ds.records[0].id}' image: .* leads to {secret}, outside"):
        export_dataset(ds, "rstpreid", tmp_path / "out", link=link)
    assert not (tmp_path / "out").exists()


def test_links_inside_the_dataset_export_the_real_file(tbps, tmp_path):
    root = tbps("native")
    ds = load_dataset(root)
    real = root / "store" / "real.png"
    real.parent.mkdir()
    shutil.move(root / ds.records[0].image, real)
    os.symlink(os.path.relpath(real, (root / ds.records[0].image).parent), root / ds.records[0].image)
    export_dataset(ds, "native", tmp_path / "copied")
    export_dataset(ds, "native", tmp_path / "linked", link=True)
    copied, linked = (tmp_path / d / ds.records[0].image for d in ("copied", "linked"))
    assert not copied.is_symlink() and copied.read_bytes() == real.read_bytes()
    assert not linked.is_symlink() and os.path.samefile(linked, real)


def test_resolve_inside_refuses_what_is_not_a_regular_file(tmp_path):
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(DataError, match=r"record 'x' image: .*a_folder is not a regular file"):
        resolve_inside(tmp_path, "a_folder", "record 'x' image")
    assert resolve_inside(tmp_path, "missing.png", "w") == tmp_path / "missing.png"  # the caller says "not found"

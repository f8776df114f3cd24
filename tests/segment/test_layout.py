"""Output layout: images under images/, maps under parsing/, never colliding, never escaping the root."""

from __future__ import annotations

from pathlib import Path

from dp_cli.data.dataset import PersonDataset, PersonRecord, safe_relpath
from dp_cli.segment.output import plan_paths


def ds(*images: str) -> PersonDataset:
    return PersonDataset(Path("/x"), [PersonRecord(f"r{i}", img, i, "train", ["c"]) for i, img in enumerate(images)])


def test_paths_mirror_the_source_and_keep_an_images_prefix():
    lay = plan_paths(ds("images/a.png", "cam1/b.jpg", "cam1/b.jpg"))
    assert lay.images == {"images/a.png": "images/a.png", "cam1/b.jpg": "images/cam1/b.jpg"}
    assert lay.parsing == {"images/a.png": "parsing/a.png", "cam1/b.jpg": "parsing/cam1/b.png"}


def test_collisions_fall_back_to_full_source_paths():
    lay = plan_paths(ds("a.png", "images/a.png"))
    assert len(set(lay.images.values())) == 2 and len(set(lay.parsing.values())) == 2
    lay = plan_paths(ds("p/a.jpg", "p/a.png"))
    assert lay.parsing == {"p/a.jpg": "parsing/p/a.jpg.png", "p/a.png": "parsing/p/a.png.png"}
    for path in list(lay.images.values()) + list(lay.parsing.values()):
        assert safe_relpath(path, "t") == path

"""A tiny toy world shared by the toy tests (64x32 images, so the whole area stays fast)."""

from pathlib import Path

import pytest

from dp_cli.toy.world import generate_world

TINY = dict(persons=6, seed=3, height=64, width=32, images_per_person=2, test_fraction=0.34, catalog_per_type=2)


@pytest.fixture
def tiny_args() -> dict:
    """The arguments of the tiny world (a fresh copy per test)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy") / "world"
    generate_world(root, **TINY)
    return root


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory) -> Path:
    """Default-size images, enough persons to see every noun and pattern."""
    root = tmp_path_factory.mktemp("toy") / "medium"
    generate_world(root, persons=30, seed=11, images_per_person=2, catalog_per_type=3)
    return root

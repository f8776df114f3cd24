"""Fixtures of the edit tests: a tiny 'trained' model folder, a tiny toy world, a loaded pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
H, W = 64, 32


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A model folder in the layout `dp train` writes (tiny random weights)."""
    from dp_models.dp_model import DPConfig, DPModel
    from dp_models.tiny import write_tiny_pretrained

    root = tmp_path_factory.mktemp("edit-model")
    parts = write_tiny_pretrained(root / "parts", height=H, width=W, seed=0)
    model = DPModel.from_pretrained_parts(str(parts / "sd"), str(parts / "clip-vision"),
                                          DPConfig(resolution=(H, W)))
    model.save_pretrained(root / "model")
    return root / "model"


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """A toy world of 3 persons x 2 images at 64x32, with a catalog of 3 items per type."""
    from dp_cli.toy.world import generate_world

    root = tmp_path_factory.mktemp("edit-world") / "world"
    generate_world(root, persons=3, seed=0, height=H, width=W, images_per_person=2, catalog_per_type=3)
    return root


@pytest.fixture(scope="session")
def pipe(model_dir):
    from dp_models.edit_pipeline import DPEditPipeline

    return DPEditPipeline.from_pretrained(str(model_dir), scheduler="ddim")


@pytest.fixture
def person(world):
    """(image, parsing labels, caption) of the first train image that has hair and upper clothes."""
    from dp_cli.data.formats.native import load_native

    ds = load_native(world)
    for rec in ds.split("train"):
        labels = np.asarray(Image.open(ds.parsing_path(rec)))
        if (labels == 2).any() and (labels == 4).any():
            return Image.open(ds.image_path(rec)).convert("RGB"), labels, rec.captions[0]
    raise AssertionError("no train image with hair and upper clothes in the toy world")

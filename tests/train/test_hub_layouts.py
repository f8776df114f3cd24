"""`dp train` from the SD-1.5 repository layout with a full CLIPModel image encoder (openai/clip-vit-large-patch14
layout), then `dp edit` with the model it wrote; and from a .bin-only SD folder (replicas: tests/models/hub_layouts.py)."""

from __future__ import annotations

import json

import pytest
from PIL import Image


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, hl):
    root = tmp_path_factory.mktemp("hub-layouts")
    hl.sd15(root / "sd15")
    hl.full_clip(root / "clip-vit-large-patch14")
    hl.bin_only(root / "sd15" / "sd", root / "sd-bin")
    return root


def test_train_sd15_layout_full_clip_then_edit(dp, train_args, layouts, tiny_dataset, tmp_path):
    out = tmp_path / "run"
    result = dp("--json", "train", *train_args(out, max_train_steps=1, pretrained_model=layouts / "sd15" / "sd",
                                              image_encoder=layouts / "clip-vit-large-patch14"))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 1
    model = out / "model"
    assert (model / "dp_config.json").exists()
    edited = tmp_path / "edited.png"
    result = dp("--json", "edit", "--model", model, "--image", tiny_dataset / "images" / "p000.png",
                "--parsing", tiny_dataset / "parsing" / "p000.png",
                "--caption", "A person with red hair is wearing a blue shirt and green pants.",
                "--attribute", f"hair={tiny_dataset / 'images' / 'p001.png'}", "--out", edited,
                "--steps", "2", "--mask-dilation", "1", "--feather", "1")
    assert result.exit_code == 0, result.stderr
    assert Image.open(edited).size == (32, 64)


def test_train_from_bin_only_sd_folder(dp, train_args, layouts, tmp_path):
    result = dp("--json", "train", *train_args(tmp_path / "run", max_train_steps=1,
                                              pretrained_model=layouts / "sd-bin"))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 1
    assert "Defaulting to unsafe serialization" not in result.stderr  # library notes only with --verbose

"""The image toolkit (dp_cli/data/images.py): one test per function, on small images written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dp_cli.data.images import (CLIP_MEAN, CLIP_STD, grow_mask, load_parsing, load_rgb, to_clip_pixels,
                                to_vae_pixels)
from dp_cli.errors import DataError


def test_load_rgb_decodes_any_mode_to_rgb_and_names_bad_files(tmp_path):
    Image.new("RGBA", (5, 3), (10, 20, 30, 40)).save(tmp_path / "a.png")
    Image.new("L", (5, 3), 7).save(tmp_path / "g.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    a, g = load_rgb(tmp_path / "a.png"), load_rgb(tmp_path / "g.png")
    assert (a.mode, a.size, a.getpixel((0, 0))) == ("RGB", (5, 3), (10, 20, 30))
    assert g.getpixel((4, 2)) == (7, 7, 7)
    with pytest.raises(DataError, match=r"^reference image .*nope.png not found"):
        load_rgb(tmp_path / "nope.png", "reference image")
    with pytest.raises(DataError, match=r"bad.png cannot be read"):
        load_rgb(tmp_path / "bad.png")


def test_load_parsing_keeps_label_ids_and_resizes_nearest(tmp_path):
    labels = np.zeros((4, 6), np.uint8)
    labels[:, 3:] = 17
    Image.fromarray(labels, "L").save(tmp_path / "p.png")
    Image.new("RGB", (6, 4)).save(tmp_path / "rgb.png")
    out = load_parsing(tmp_path / "p.png")
    assert out.dtype == np.int64 and np.array_equal(out, labels)
    big = load_parsing(tmp_path / "p.png", size=(12, 8))  # (width, height)
    assert big.shape == (8, 12) and set(np.unique(big)) == {0, 17} and np.array_equal(big[::2, ::2], labels)
    with pytest.raises(DataError, match="mode RGB is not a label map"):
        load_parsing(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="parsing map .*missing.png not found"):
        load_parsing(tmp_path / "missing.png")


@pytest.mark.parametrize("pixels", [0, 1, 2, 3, 4, 7])
def test_grow_mask_is_the_square_neighbourhood_clipped_at_the_border(pixels):
    rng = np.random.default_rng(pixels)
    mask = rng.random((13, 17)) < 0.04
    mask[0, 0] = mask[12, 16] = True
    want = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(mask)):
        want[max(0, y - pixels): y + pixels + 1, max(0, x - pixels): x + pixels + 1] = True
    got = grow_mask(mask.astype(np.uint8), pixels)
    assert got.dtype == bool and np.array_equal(got, want)


@pytest.mark.parametrize("pixels", [0, 1, 2, 5])
def test_grow_mask_shrink_keeps_pixels_whose_whole_square_is_inside_the_mask_and_the_image(pixels):
    rng = np.random.default_rng(10 + pixels)
    mask = rng.random((15, 11)) < 0.85
    mask[:, :4] = True  # a solid band on the border: the outside still counts as background
    want = np.zeros_like(mask)
    for y, x in np.ndindex(mask.shape):
        y0, y1, x0, x1 = y - pixels, y + pixels + 1, x - pixels, x + pixels + 1
        want[y, x] = y0 >= 0 and x0 >= 0 and y1 <= 15 and x1 <= 11 and mask[y0:y1, x0:x1].all()
    got = grow_mask(mask, pixels, shrink=True)
    assert got.dtype == bool and np.array_equal(got, want)
    assert got is not mask


def test_to_vae_pixels_maps_0_255_to_minus_one_one_at_height_width():
    arr = np.zeros((6, 4, 3), np.uint8)
    arr[:, :, 1] = 255
    x = to_vae_pixels(Image.fromarray(arr), (6, 4))
    assert x.shape == (3, 6, 4) and x.dtype == torch.float32 and x.is_contiguous()
    assert torch.equal(x[0], torch.full((6, 4), -1.0)) and torch.equal(x[1], torch.ones(6, 4))
    resized = to_vae_pixels(Image.fromarray(arr).convert("L"), (12, 2))  # grey image: converted to RGB first
    assert resized.shape == (3, 12, 2) and torch.equal(resized[0], resized[2])


def test_to_clip_pixels_normalises_with_clip_statistics():
    x = to_clip_pixels(Image.new("RGB", (8, 8), (255, 0, 51)), (5, 3))
    assert x.shape == (3, 5, 3) and x.dtype == torch.float32
    want = (torch.tensor([1.0, 0.0, 0.2]) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(x[:, 2, 1], want, atol=1e-6)
    plain = to_clip_pixels(Image.new("RGB", (3, 3), (255, 255, 255)), (3, 3), mean=(0, 0, 0), std=(1, 1, 1))
    assert torch.equal(plain, torch.ones(3, 3, 3))


def test_the_settings_that_use_the_clip_statistics_stay_free_of_numpy_pil_and_torch():
    import subprocess
    import sys

    code = "import sys, dp_cli.eval.config; print(sorted({'numpy', 'PIL', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

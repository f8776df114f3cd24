"""Reference preparation: product photos, cut-outs and masked pictures in the encoder's training form."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dp_cli.data.reference import (TRAIN_AUGMENT, Augment, prepare_reference, rgb_to_lab, training_reference)
from dp_cli.toy.catalog import render_item
from dp_cli.toy.spec import Attribute


def _garment(colour, background, side=64, noun="t-shirt", pattern="plain", second=None):
    return render_item(Attribute("uppercloth", noun, colour, pattern, second), side, background)


def _box(mask: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(mask)
    return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


def test_white_garment_on_white_background_is_found_like_a_dark_one():
    white = prepare_reference(_garment("white", (255, 255, 255)))
    black = prepare_reference(_garment("black", (255, 255, 255)))
    assert white.method == black.method == "background"
    assert white.warning is None
    assert abs(white.foreground - black.foreground) < 0.02
    assert white.image.size == black.image.size  # the same tight crop
    assert white.image.size[0] < 64 and white.image.size[1] < 64


def test_light_grey_background_and_striped_garment():
    striped = prepare_reference(_garment("white", (246, 246, 244), noun="shirt", pattern="striped", second="black"))
    plain = prepare_reference(_garment("red", (246, 246, 244), noun="shirt"))
    assert striped.method == "background" and striped.warning is None
    assert abs(striped.foreground - plain.foreground) < 0.03  # the white stripes stay foreground


def test_outside_the_garment_becomes_noise_inside_stays():
    photo = _garment("red", (255, 255, 255))
    prep = prepare_reference(photo, seed=3)
    crop = np.asarray(prep.image)
    assert prep.mask.shape == crop.shape[:2]
    inside = crop[prep.mask].astype(int)
    assert np.abs(inside.mean(0) - np.array([200, 32, 38])).max() < 40  # red (shaded, outlined)
    outside = crop[~prep.mask]
    assert outside.std() > 50  # uniform noise, not the white background
    again = prepare_reference(photo, seed=3)
    assert np.array_equal(np.asarray(again.image), crop)  # same seed, same noise


def test_rgba_cutout_uses_its_alpha():
    rgb = np.full((40, 30, 3), 90, np.uint8)  # the colour is the same everywhere: only alpha tells
    alpha = np.zeros((40, 30), np.uint8)
    alpha[10:30, 5:20] = 255
    prep = prepare_reference(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))
    assert prep.method == "alpha"
    assert prep.image.size == (15, 20)
    assert prep.mask.all()


def test_a_small_cutout_on_a_large_canvas_is_cropped_not_used_whole():
    """A belt of 20x12 opaque pixels on a 400x400 transparent canvas (0.15% of it): its hidden colours were
    used whole before, and the first fix refused it as 'too little opaque'."""
    rgba = np.zeros((400, 400, 4), np.uint8)
    rgba[..., :3] = (255, 0, 0)  # invisible red
    rgba[200:212, 100:120] = (20, 20, 200, 255)  # the visible blue belt
    prep = prepare_reference(Image.fromarray(rgba, "RGBA"))
    assert prep.method == "alpha" and prep.image.size == (20, 12)
    assert np.asarray(prep.image)[prep.mask].mean(0).round().tolist() == [20, 20, 200]


def test_a_given_mask_wins():
    photo = _garment("blue", (255, 255, 255))
    mask = np.zeros((64, 64), bool)
    mask[0:10, 0:8] = True
    prep = prepare_reference(photo, mask)
    assert prep.method == "mask" and prep.image.size == (8, 10)


def test_no_foreground_warns_and_uses_the_picture_whole():
    blank = Image.new("RGB", (50, 40), (250, 250, 250))
    prep = prepare_reference(blank, name="catalog/blank.png")
    assert prep.method == "whole" and prep.image.size == (50, 40)
    assert "catalog/blank.png" in prep.warning and "no foreground" in prep.warning


def test_busy_picture_has_no_plain_background():
    rng = np.random.default_rng(0)
    scene = Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    prep = prepare_reference(scene, name="street.jpg")
    assert prep.method == "whole" and "street.jpg" in prep.warning


def test_tight_crop_is_whole_foreground_with_a_warning():
    crop = Image.fromarray(np.tile(np.array([[200, 30, 30], [30, 30, 200]], np.uint8), (20, 10, 1)))
    prep = prepare_reference(crop, name="tight.png")
    assert prep.method == "whole" and "tight.png" in prep.warning
    assert prep.image.size == crop.size


def test_training_augmentation_varies_background_and_framing_deterministically():
    img = np.zeros((40, 20, 3), np.uint8)
    img[10:30, 5:15] = (200, 30, 30)
    yy, xx = np.mgrid[:40, :20]
    mask = (np.abs(yy - 19.5) / 10 + np.abs(xx - 9.5) / 5) <= 1  # a diamond: its box corners are outside it
    image = Image.fromarray(img)
    plain = training_reference(image, mask, np.random.default_rng(0), Augment())
    assert plain.size == (10, 18)
    sizes, plain_backgrounds = set(), 0
    for k in range(40):
        ref = training_reference(image, mask, np.random.default_rng(k), TRAIN_AUGMENT)
        sizes.add(ref.size)
        corner = np.asarray(ref)[:2, :2].reshape(-1, 3).astype(int)
        plain_backgrounds += bool(corner.min() >= 200 and np.ptp(corner, axis=0).max() <= 12)
        again = training_reference(image, mask, np.random.default_rng(k), TRAIN_AUGMENT)
        assert np.array_equal(np.asarray(again), np.asarray(ref))
    assert len(sizes) > 10  # scale and padding vary
    assert 3 <= plain_backgrounds <= 30  # some plain light backgrounds, mostly noise


def test_lab_of_white_and_black():
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0]]))
    assert np.allclose(lab[0], [100, 0, 0], atol=0.05) and np.allclose(lab[1], [0, 0, 0], atol=0.05)


def test_enclosed_background_hole_is_not_foreground():
    """A hair piece on a white background encloses the face opening: that hole is background, not garment."""
    photo = render_item(Attribute("hair", "hair", "black", style="long"), 64, (255, 255, 255))
    prep = prepare_reference(photo)
    pixels = np.asarray(prep.image)[prep.mask].astype(int)
    assert (pixels.min(1) > 230).mean() < 0.06  # only the hole's anti-aliased rim (the hole itself was ~30%)
    assert prep.warning is None


def test_resampling_halo_around_a_thin_garment_is_not_foreground():
    """A small product photo resized with Lanczos rings: a one-to-two-pixel near-white rim around a thin hair
    piece (about a fifth of its foreground before the peel). The rim is background; the garment is not eroded."""
    bg = (240, 242, 246)
    photo = render_item(Attribute("hair", "hair", "red", style="short"), 32, bg)
    prep = prepare_reference(photo)
    lab = rgb_to_lab(np.asarray(prep.image)[prep.mask])
    near_background = np.linalg.norm(lab - rgb_to_lab(np.array(bg)), axis=1) <= 8
    assert prep.method == "background" and near_background.mean() < 0.05
    red = rgb_to_lab(np.asarray(photo)).reshape(-1, 3)
    garment = np.linalg.norm(red - rgb_to_lab(np.array([200, 32, 38])), axis=1) < 25
    assert prep.mask.sum() >= garment.sum()  # every clearly red pixel is still foreground

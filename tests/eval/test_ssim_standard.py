"""dp's SSIM is the standard one: scikit-image's structural_similarity (gaussian window, sigma 1.5,
population covariances, data range 255), which averages the map away from the border."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from dp_cli.eval.edits import gaussian_filter, preservation, ssim, ssim_map


def _skimage(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    return structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=sigma,
                                 use_sample_covariance=False, channel_axis=-1 if a.ndim == 3 else None)


def _structured(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A toy-like person (flat coloured blocks with edges) and the same with a recoloured shirt and noise."""
    rng = np.random.default_rng(seed)
    a = np.full((h, w, 3), 235, np.uint8)
    a[h // 8: h // 4, w // 3: 2 * w // 3] = (90, 60, 40)             # head
    a[h // 4: h // 2, w // 4: 3 * w // 4] = (200, 30, 30)            # shirt
    a[h // 2: 7 * h // 8, w // 4: 3 * w // 4: 2] = (30, 30, 120)     # striped trousers
    b = a.copy()
    b[h // 4: h // 2, w // 4: 3 * w // 4] = (30, 160, 60)
    b = np.clip(b.astype(int) + rng.integers(-8, 9, b.shape), 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("shape", [(64, 32, 3), (64, 32), (37, 23, 3), (11, 11, 3), (128, 64, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_whole_image_ssim_matches_scikit_image_on_random_images(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(_skimage(a, b), abs=1e-6)


@pytest.mark.parametrize("size", [(64, 32), (256, 128), (48, 40)])
def test_whole_image_ssim_matches_scikit_image_on_structured_images(size):
    a, b = _structured(*size, seed=3)
    assert ssim(a, b) == pytest.approx(_skimage(a, b), abs=1e-6)
    assert ssim(a, a) == 1.0 == pytest.approx(_skimage(a, a))


@pytest.mark.parametrize("sigma", [0.8, 1.5, 2.0])
def test_other_sigmas_match_too(sigma):
    a, b = _structured(64, 48, seed=4)
    assert ssim(a, b, sigma=sigma) == pytest.approx(_skimage(a, b, sigma), abs=1e-6)


def test_gaussian_filter_borders_are_scipy_reflect():
    from scipy.ndimage import gaussian_filter as scipy_gaussian

    rng = np.random.default_rng(5)
    for shape in [(64, 32), (9, 4), (3, 2)]:  # also images narrower than the window's radius
        x = rng.normal(size=shape)
        np.testing.assert_allclose(gaussian_filter(x, 1.5), scipy_gaussian(x, 1.5, mode="reflect", truncate=3.5),
                                   atol=1e-12)


def test_masked_ssim_averages_the_map_over_mask_pixels_inside_the_valid_area():
    a, b = _structured(64, 32, seed=6)
    mask = np.zeros((64, 32), bool)
    mask[:, :16] = True  # left half, border columns included
    maps = np.stack([ssim_map(a[..., c], b[..., c]) for c in range(3)], -1)
    pad = (11 - 1) // 2
    valid = np.zeros((64, 32), bool)
    valid[pad:-pad, pad:-pad] = True
    assert ssim(a, b, mask) == pytest.approx(float(maps[mask & valid].mean()), abs=1e-12)
    # the whole image as a mask is the unmasked (scikit-image) value
    assert ssim(a, b, np.ones((64, 32), bool)) == pytest.approx(_skimage(a, b), abs=1e-6)


def test_masked_ssim_of_a_border_only_mask_uses_its_pixels():
    a, b = _structured(64, 32, seed=7)
    mask = np.zeros((64, 32), bool)
    mask[:2] = True  # only the top border band
    value = ssim(a, b, mask)
    assert np.isfinite(value) and -1 <= value <= 1


def test_preservation_sees_changes_outside_the_mask_only():
    a, _ = _structured(64, 32, seed=8)
    edited = a.copy()
    edited[16:32, 8:24] = (30, 160, 60)  # the edit, inside the mask
    mask = np.zeros((64, 32), bool)
    mask[16:32, 8:24] = True
    assert preservation(edited, a, mask, dilate=2) == (None, 1.0)
    edited[50:60, 10:20] = 0  # a change outside
    p, s = preservation(edited, a, mask, dilate=2)
    assert p is not None and s < 1.0

"""Clean-up: connected components agree with a plain BFS; islands and holes are handled as documented."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from dp_cli.segment.cleanup import clean_map, connected_components


def bfs_components(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    comp = -np.ones((h, w), int)
    n = 0
    for y in range(h):
        for x in range(w):
            if comp[y, x] >= 0:
                continue
            comp[y, x] = n
            q = deque([(y, x)])
            while q:
                cy, cx = q.popleft()
                for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                    if 0 <= ny < h and 0 <= nx < w and comp[ny, nx] < 0 and a[ny, nx] == a[cy, cx]:
                        comp[ny, nx] = n
                        q.append((ny, nx))
            n += 1
    return comp


def same_partition(c1: np.ndarray, c2: np.ndarray) -> bool:
    pairs = set(zip(c1.ravel().tolist(), c2.ravel().tolist()))
    return len(pairs) == len(set(c1.ravel().tolist())) == len(set(c2.ravel().tolist()))


def test_components_match_bfs_on_random_maps():
    rng = np.random.default_rng(1)
    for k in (2, 3, 5):
        a = rng.integers(0, k, (23, 17))
        comp, n = connected_components(a)
        ref = bfs_components(a)
        assert n == ref.max() + 1
        assert same_partition(comp, ref)


def test_spiral_is_one_component():
    a = np.zeros((9, 9), int)
    a[1, 1:8] = a[1:8, 7] = a[7, 1:8] = a[3:8, 1] = a[3, 1:6] = a[3:6, 5] = 1
    comp, n = connected_components(a)
    assert len(np.unique(comp[a == 1])) == 1
    assert same_partition(comp, bfs_components(a))


def test_islands_are_reassigned_to_surrounding_label_and_holes_filled():
    m = np.zeros((60, 40), np.uint8)
    m[10:50, 10:30] = 4  # upper clothes
    m[20, 20] = 9  # a one-pixel island of shoe inside it
    m[30:34, 14:18] = 0  # a 16-pixel background hole inside it
    m[40:50, 10:15] = 16  # a real 50-pixel bag touching the border of the garment
    m[0, 0] = 2  # a one-pixel hair island in the corner background
    out = clean_map(m, min_island=5, max_hole=20)
    assert out[20, 20] == 4 and (out[30:34, 14:18] == 4).all() and out[0, 0] == 0
    assert (out[40:50, 10:15] == 16).all()
    assert (out[:10] == 0).all() and (out[:, :10] == 0).all()  # the big background stays
    assert (clean_map(m, min_island=5, max_hole=10)[30:34, 14:18] == 0).all()  # hole above the size limit
    np.testing.assert_array_equal(clean_map(m, 0, 0), m)


def test_hole_between_two_labels_is_not_filled():
    m = np.zeros((20, 20), np.uint8)
    m[2:18, 2:10] = 14
    m[2:18, 10:18] = 4
    m[8:10, 8:12] = 0  # background pocket touching both arm and shirt
    assert (clean_map(m, min_island=0, max_hole=50)[8:10, 8:12] == 0).all()


def test_fast_enough_for_256x128():
    rng = np.random.default_rng(0)
    m = np.repeat(np.repeat(rng.integers(0, 18, (64, 32)), 4, 0), 4, 1).astype(np.uint8)
    m[rng.random(m.shape) < 0.02] = 3
    t = time.perf_counter()
    out = clean_map(m, min_island=8, max_hole=64)
    assert time.perf_counter() - t < 1.0
    _, n_before = connected_components(m)
    _, n_after = connected_components(out)
    assert n_after < n_before and out.dtype == np.uint8


def test_island_size_scales_with_the_map_area():
    from dp_cli.segment.cleanup import island_threshold

    assert island_threshold(32, (384, 128)) == 32
    assert abs(island_threshold(32, (256, 128)) - 64 / 3) < 1e-9
    assert abs(island_threshold(32, (64, 32)) - 4 / 3) < 1e-9


def test_small_parts_at_a_boundary_are_kept_while_specks_go():
    """A 64x32-scale person: hair beside the face under a hat, shoes, all below the island size."""
    m = np.zeros((40, 20), np.uint8)
    m[4:7, 6:13] = 1  # hat, 21 px
    m[7:12, 7:12] = 11  # face, 25 px
    m[7:9, 6] = 2  # hair: 2 px between hat, face and background
    m[12:30, 5:15] = 4  # upper clothes
    m[30:37, 6:14] = 6  # pants
    m[37:39, 6:9] = 9  # left shoe, 6 px between pants and background
    m[37:39, 11:14] = 10  # right shoe
    m[20, 9] = 2  # a hair speck inside the shirt: not the largest hair region
    m[16:18, 12] = 3  # a 2-px sunglasses speck inside the shirt: the only sunglasses, enclosed by one label
    out = clean_map(m, min_island=30, max_hole=0)
    assert out[20, 9] == 4 and (out[16:18, 12] == 4).all()
    expected = m.copy()
    expected[20, 9] = expected[16, 12] = expected[17, 12] = 4
    np.testing.assert_array_equal(out, expected)  # hat, face, hair, shoes: every part stays whole

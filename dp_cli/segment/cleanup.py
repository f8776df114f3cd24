"""Parsing-map clean-up without scipy: drop tiny islands and fill small enclosed background holes.

Connected components (4-connectivity) are found on row runs: pixels are grouped into horizontal runs
of one label, runs touching vertically with the same label are merged by a small union-find. A
256x128 map has a few thousand runs, so this takes milliseconds.

Clean-up removes specks, not parts: the island size scales with the map's area (`island_threshold`), and
the largest region of a label is kept when it borders two or more other labels (hair beside the face under
a hat, a shoe between trouser leg and background), however small. A speck enclosed by one label is removed.
"""

from __future__ import annotations

import numpy as np

REFERENCE_AREA = 384 * 128  # `min_island_pixels` is given for a map of this area (CUHK-PEDES images)


def island_threshold(min_island_pixels: float, shape: tuple[int, ...]) -> float:
    """Island size for a map of `shape`: `min_island_pixels` of a 384x128 map, scaled with the map's area
    (32 -> 32 px at 384x128, 21.3 at 256x128, 1.3 at 64x32)."""
    return float(min_island_pixels) * shape[0] * shape[1] / REFERENCE_AREA


def connected_components(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Component id per pixel (0..n-1, same label and 4-connected) and the number of components."""
    h, w = labels.shape
    flat = labels.reshape(h, w)
    starts = np.ones((h, w), dtype=bool)
    starts[:, 1:] = flat[:, 1:] != flat[:, :-1]
    run_id = np.cumsum(starts.ravel()).reshape(h, w) - 1
    n_runs = int(run_id[-1, -1]) + 1
    same = flat[1:] == flat[:-1]
    pairs = np.stack([run_id[:-1][same], run_id[1:][same]], axis=1)
    parent = np.arange(n_runs)
    if len(pairs):
        pairs = np.unique(pairs, axis=0)
        parent = _union_find(parent, pairs)
    _, comp_of_run = np.unique(parent, return_inverse=True)
    return comp_of_run[run_id], int(comp_of_run.max()) + 1


def _union_find(parent: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    par = parent.tolist()

    def find(x: int) -> int:
        root = x
        while par[root] != root:
            root = par[root]
        while par[x] != root:
            par[x], x = root, par[x]
        return root

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            par[max(ra, rb)] = min(ra, rb)
    return np.array([find(x) for x in range(len(par))])


def _neighbour_counts(comp: np.ndarray, labels: np.ndarray, n: int, n_labels: int) -> np.ndarray:
    """[n, n_labels]: how many 4-neighbour pixel pairs connect each component to each other label."""
    a = np.concatenate([comp[:, :-1].ravel(), comp[:, 1:].ravel(), comp[:-1].ravel(), comp[1:].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[:, :-1].ravel(), labels[1:].ravel(), labels[:-1].ravel()])
    own = np.concatenate([labels[:, :-1].ravel(), labels[:, 1:].ravel(), labels[:-1].ravel(), labels[1:].ravel()])
    keep = own != b
    counts = np.bincount(a[keep].astype(np.int64) * n_labels + b[keep], minlength=n * n_labels)
    return counts.reshape(n, n_labels)


def _protected(n: int, comp_label: np.ndarray, sizes: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """[n] bool: the largest component of each label, where it borders two or more other labels."""
    order = np.lexsort((-sizes, comp_label))
    first = np.ones(n, dtype=bool)
    first[1:] = comp_label[order][1:] != comp_label[order][:-1]
    largest = np.zeros(n, dtype=bool)
    largest[order[first]] = True
    return largest & ((nb > 0).sum(1) >= 2)


def clean_map(labels: np.ndarray, min_island: float = 0, max_hole: int = 0, background: int = 0,
              passes: int = 3) -> np.ndarray:
    """Reassign components smaller than `min_island` pixels to their most common neighbour label, and
    fill background components up to `max_hole` pixels that do not touch the border and are enclosed
    by a single label. The big background touching the border is never changed, and neither is the
    largest component of a label that borders two or more other labels in `labels` (a small part at a
    boundary, not a speck): clean-up never removes the last piece of such a part."""
    out = labels.astype(np.int64)
    n_labels = int(out.max()) + 1
    keep_px = None  # pixels of protected components, fixed on the input so later passes cannot erode them
    for _ in range(passes):
        comp, n = connected_components(out)
        sizes = np.bincount(comp.ravel(), minlength=n)
        comp_label = np.zeros(n, dtype=np.int64)
        comp_label[comp.ravel()] = out.ravel()
        border = np.zeros(n, dtype=bool)
        border[np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]])] = True
        nb = _neighbour_counts(comp, out, n, n_labels)
        if keep_px is None:
            keep_px = _protected(n, comp_label, sizes, nb)[comp]
        keep = np.bincount(comp[keep_px], minlength=n) > 0
        has_nb = nb.sum(1) > 0
        target = np.where(has_nb, nb.argmax(1), comp_label)
        island = (sizes < min_island) & has_nb & ~keep & ~((comp_label == background) & border)
        enclosing = (nb > 0).sum(1) == 1
        hole = (comp_label == background) & ~border & (sizes <= max_hole) & enclosing
        change = island | hole
        if not change.any():
            break
        new_label = np.where(change, target, comp_label)
        out = new_label[comp]
    return out.astype(labels.dtype)

"""Did the edit take the reference? A verifier that reads images only (never a dataset's ground truth).

For each edited attribute it compares three colour distributions in CIE Lab: the edited image inside
the attribute's region (E), the source inside the same region (O), and the prepared reference's
foreground (R). Distributions, not means, so striped or checked references compare fairly: the
distance between two pixel sets is a symmetric, trimmed chamfer distance (each pixel to its nearest
colour in the other set). An attribute's score is

    score = g * a * d(E, O) / (d(E, O) + d(E, R))      in [0, 1]

above 0.5 when the edited region is nearer the reference than the source it replaced. The gate
g = clip((1 - d(E, R) / d(O, R)) / 0.1, 0, 1) takes the credit away from an edit that moved to some
third colour, no nearer the reference than the source was (the ratio alone gives that ~0.5), and the
absolute agreement a = clip((60 - d(E, R)) / 30, 0, 1) from a grey blur that is merely less far from
the reference than the source (both scaled in; thresholds measured on the toy world). When the
reference and the source have nearly the same colours the ratio says nothing, and the score is the
absolute agreement alone (blended between the two by how far O is from R).
An edit's score is its weakest attribute's. Scores are comparable across seeds of one edit, which is
what best-of-N needs, and `min_score` turns them into pass / fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dp_cli.data.reference import PreparedReference, rgb_to_lab

SAMPLE = 400  # pixels per set (strided, deterministic)
TRIM = 0.8  # the nearest-colour distances above this quantile are outliers (outlines, mask edges)
NEAR, FAR = 30.0, 60.0  # Lab units: absolute agreement is 1 within NEAR of the reference, 0 beyond FAR
SAME = 12.0  # d(O, R) below this: reference and source look alike, the ratio is not informative
MIN_REGION = 4  # pixels: a smaller region cannot be judged
GATE = 0.1  # the edit must close this share of the source's distance to the reference for full credit


@dataclass
class AttributeCheck:
    """One edited attribute's verdict parts (distances in Lab units)."""

    type: str
    score: float | None  # None: the region or the reference has too few pixels to judge
    d_reference: float | None = None  # edited region vs reference foreground
    d_original: float | None = None  # edited region vs the source region
    d_source_reference: float | None = None  # source region vs reference (how different the ask was)

    def record(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        return {"type": self.type, "score": r(self.score), "d_reference": r(self.d_reference),
                "d_original": r(self.d_original), "d_source_reference": r(self.d_source_reference)}


@dataclass
class Verdict:
    """An edit's score (its weakest attribute's) and whether it passes `min_score`."""

    score: float
    passed: bool
    min_score: float
    attributes: list[AttributeCheck] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "passed": self.passed, "min_score": self.min_score,
                "method": "colour", "attributes": [a.record() for a in self.attributes]}


def _sample(lab: np.ndarray) -> np.ndarray:
    if len(lab) <= SAMPLE:
        return lab
    return lab[np.linspace(0, len(lab) - 1, SAMPLE).astype(int)]


def _directed(a: np.ndarray, b: np.ndarray) -> float:
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(1)
    keep = np.sort(d)[: max(1, int(np.ceil(TRIM * len(d))))]
    return float(keep.mean())


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric trimmed chamfer distance between two Lab pixel sets [N, 3] and [M, 3]."""
    a, b = _sample(a), _sample(b)
    return 0.5 * (_directed(a, b) + _directed(b, a))


def check_attribute(type_name: str, edited: np.ndarray, source: np.ndarray, region: np.ndarray,
                    reference: PreparedReference) -> AttributeCheck:
    """Score one attribute: `edited` and `source` RGB (same size), `region` bool, the prepared reference."""
    ref_pixels = np.asarray(reference.image.convert("RGB"))[reference.mask]
    if region.sum() < MIN_REGION or len(ref_pixels) < MIN_REGION:
        return AttributeCheck(type_name, None)
    e, o, r = (rgb_to_lab(p.reshape(-1, 3)) for p in (edited[region], source[region], ref_pixels))
    d_ref, d_orig, d_src = colour_distance(e, r), colour_distance(e, o), colour_distance(o, r)
    progress = min(1.0, max(0.0, (1.0 - d_ref / max(d_src, 1e-6)) / GATE))
    absolute = min(1.0, max(0.0, (FAR - d_ref) / (FAR - NEAR)))
    ratio = progress * absolute * d_orig / max(d_orig + d_ref, 1e-6)
    w = min(1.0, d_src / SAME)
    score = w * ratio + (1 - w) * absolute
    return AttributeCheck(type_name, float(score), d_ref, d_orig, d_src)


def best_candidate(images, source: np.ndarray, regions: list[np.ndarray], types: list[str],
                   references: list[PreparedReference], min_score: float) -> tuple[int, list[Verdict]]:
    """Verify the N candidate images of one edit; (index of the best-scored, every verdict). Ties go to the
    lowest index, so candidate 0 (the edit's own seed) wins when nothing is better."""
    verdicts = [verify_edit(np.asarray(im), source, regions, types, references, min_score) for im in images]
    return max(range(len(verdicts)), key=lambda k: (verdicts[k].score, -k)), verdicts


def verify_edit(edited: np.ndarray, source: np.ndarray, regions: list[np.ndarray], types: list[str],
                references: list[PreparedReference], min_score: float) -> Verdict:
    """The verdict of one edited image (RGB arrays of one size; one region and reference per attribute)."""
    checks = [check_attribute(t, edited, source, m, r) for t, m, r in zip(types, regions, references)]
    judged = [c.score for c in checks if c.score is not None]
    score = min(judged) if judged else 0.0
    return Verdict(float(score), bool(judged) and score >= min_score, min_score, checks)

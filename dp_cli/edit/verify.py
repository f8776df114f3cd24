"""Did the edit take the reference? A verifier that reads images only (never a dataset's ground truth).

For each edited attribute it compares three sets of colours in CIE Lab: the edited image inside the
attribute's region (E), the source inside the same region (O), and the prepared reference's core (R:
its foreground less a one-pixel rim, whose pixels are blends with the photo's background). Three checks:

- **moved towards the reference**: ratio = d(E, O) / (d(E, O) + d(E, R)) on the sets' mean colours,
  above 0.5 when the edited region is nearer the reference than the source it replaced;
- **wears its colours** (absolute agreement): a = clip((FAR - c(E, R)) / (FAR - NEAR), 0, 1), where c is
  a symmetric trimmed chamfer distance between the two pixel sets (each pixel to its nearest colour in
  the other set); a grey blur that is merely less far from the reference than the source gets 0;
- **keeps its pattern**: for a reference whose colours spread (striped, checked: total Lab standard
  deviation above SPREAD_MIN), p = clip(std(E) / (SPREAD_SHARE * std(R)), 0, 1); a flat region at the
  stripes' mean colour gets 0;
- **stays grey for a grey reference**: for a flat achromatic reference (its mean colour's chroma under
  GREY, colours not spread: grey, black, white), g = clip((GREY_FAR - chroma(E)) / (GREY_FAR - GREY_OK),
  0, 1); a blue shirt for a grey one is nearer the grey than a beige source was, and only this check
  says it is not grey.

An attribute's score is min(ratio, a, p, g). When the reference and the source have nearly the same
colours the ratio says nothing, and the score is min(a, p, g) alone (blended between the two by how far O
is from R). An edit's score is its weakest attribute's. Scores are comparable across seeds of one edit,
which is what best-of-N needs, and `min_score` turns them into pass / fail. Thresholds were measured on toy
worlds against their truth (benchmarks/fidelity.py; docs/toy-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from dp_cli.data.images import grow_mask
from dp_cli.data.reference import PreparedReference, rgb_to_lab

SAMPLE = 400  # pixels per set (strided, deterministic)
TRIM = 0.8  # the nearest-colour distances above this quantile are outliers (outlines, mask edges)
NEAR, FAR = 40.0, 80.0  # Lab units: absolute agreement is 1 within NEAR of the reference, 0 beyond FAR
SAME = 12.0  # d(O, R) below this: reference and source look alike, the ratio is not informative
MIN_REGION = 4  # pixels: a smaller region cannot be judged
SPREAD_MIN = 15.0  # Lab units: a reference whose colours spread more than this has a pattern to keep ...
SPREAD_SHARE = 0.3  # ... and the edited region must spread at least this share of it
# Lab chroma: a reference under GREY is achromatic, and the edited region's chroma may reach GREY_OK in full and
# GREY_FAR not at all. On 5 toy worlds (512 attributes, 98 with grey, black or white references) no edit that
# took its reference had more than 28 (benchmarks/README.md, "Fidelity"): the check changed no verdict there.
GREY, GREY_OK, GREY_FAR = 10.0, 25.0, 40.0


@dataclass
class AttributeCheck:
    """One edited attribute's verdict parts (distances in Lab units)."""

    type: str
    score: float | None  # None: the region or the reference has too few pixels to judge
    d_reference: float | None = None  # mean colours: edited region vs reference core
    d_original: float | None = None  # mean colours: edited region vs the source region
    d_source_reference: float | None = None  # mean colours: source region vs reference (how different the ask was)
    d_colours: float | None = None  # chamfer distance, edited region's pixels vs the reference's
    spread: tuple[float, float] | None = None  # colour standard deviation of the edited region, the reference
    chroma: tuple[float, float] | None = None  # mean colour's chroma: the edited region's, the reference's

    def record(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        pair = lambda v: None if v is None else [r(x) for x in v]  # noqa: E731
        return {"type": self.type, "score": r(self.score), "d_reference": r(self.d_reference),
                "d_original": r(self.d_original), "d_source_reference": r(self.d_source_reference),
                "d_colours": r(self.d_colours), "spread": pair(self.spread), "chroma": pair(self.chroma)}


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


def _trimmed_mean(d: np.ndarray) -> float:
    k = max(1, int(np.ceil(TRIM * len(d))))
    return float(np.partition(d, k - 1)[:k].mean())


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric trimmed chamfer distance between two Lab pixel sets [N, 3] and [M, 3].

    One distance matrix for both directions, from |a|^2 + |b|^2 - 2 a.b (a matrix product: 15x faster than
    the pairwise differences; in float64 the rounding is far below 0.001 Lab)."""
    a, b = _sample(np.asarray(a, dtype=np.float64)), _sample(np.asarray(b, dtype=np.float64))
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    d = np.sqrt(np.maximum(d2, 0.0))
    return 0.5 * (_trimmed_mean(d.min(1)) + _trimmed_mean(d.min(0)))


def reference_core(reference: PreparedReference) -> np.ndarray:
    """The reference's foreground pixels (RGB [N, 3]) less its one-pixel rim, unless that leaves under 30%."""
    core = grow_mask(reference.mask, 1, shrink=True)
    mask = core if core.sum() >= 0.3 * reference.mask.sum() else reference.mask
    return np.asarray(reference.image.convert("RGB"))[mask]


def _spread(lab: np.ndarray) -> float:
    return float(np.sqrt(lab.var(0).sum()))


class ReferenceColours(NamedTuple):
    """What the verifier reads of a prepared reference: its core's pixel count, mean Lab colour, spread, and
    the sample the chamfer distance uses. The same for every image and seed that reference is checked
    against, so a run computes it once per reference (20 ms for a 512x512 catalog picture)."""

    n: int
    mean: np.ndarray
    spread: float
    sample: np.ndarray


def reference_colours(reference: PreparedReference) -> ReferenceColours:
    r = rgb_to_lab(reference_core(reference).reshape(-1, 3))
    if not len(r):
        return ReferenceColours(0, np.zeros(3), 0.0, r)
    return ReferenceColours(len(r), r.mean(0), _spread(r), _sample(r))


def check_attribute(type_name: str, edited: np.ndarray, source: np.ndarray, region: np.ndarray,
                    reference: PreparedReference | ReferenceColours) -> AttributeCheck:
    """Score one attribute: `edited` and `source` RGB (same size), `region` bool, the prepared reference
    (or its `reference_colours`)."""
    ref = reference if isinstance(reference, ReferenceColours) else reference_colours(reference)
    if region.sum() < MIN_REGION or ref.n < MIN_REGION:
        return AttributeCheck(type_name, None)
    e, o = (rgb_to_lab(p.reshape(-1, 3)) for p in (edited[region], source[region]))
    e_mean, o_mean = e.mean(0), o.mean(0)
    d_ref, d_orig, d_src = (float(np.linalg.norm(a - b)) for a, b in ((e_mean, ref.mean), (e_mean, o_mean),
                                                                     (o_mean, ref.mean)))
    d_colours = colour_distance(e, ref.sample)  # the sample of a sample is itself
    absolute = min(1.0, max(0.0, (FAR - d_colours) / (FAR - NEAR)))
    spread = (_spread(e), ref.spread)
    pattern = 1.0 if spread[1] < SPREAD_MIN else min(1.0, spread[0] / (SPREAD_SHARE * spread[1]))
    chroma = (float(np.hypot(*e_mean[1:])), float(np.hypot(*ref.mean[1:])))
    achromatic = chroma[1] < GREY and ref.spread < SPREAD_MIN  # flat grey: stripes can average to grey too
    grey = min(1.0, max(0.0, (GREY_FAR - chroma[0]) / (GREY_FAR - GREY_OK))) if achromatic else 1.0
    ratio = d_orig / max(d_orig + d_ref, 1e-6)
    w = min(1.0, d_src / SAME)
    score = w * min(ratio, absolute, pattern, grey) + (1 - w) * min(absolute, pattern, grey)
    return AttributeCheck(type_name, float(score), d_ref, d_orig, d_src, d_colours, spread, chroma)


def verify_edit(edited: np.ndarray, source: np.ndarray, regions: list[np.ndarray], types: list[str],
                references: list[PreparedReference | ReferenceColours], min_score: float) -> Verdict:
    """The verdict of one edited image (RGB arrays of one size; one region and reference, or its
    `reference_colours`, per attribute)."""
    checks = [check_attribute(t, edited, source, m, r) for t, m, r in zip(types, regions, references)]
    judged = [c.score for c in checks if c.score is not None]
    score = min(judged) if judged else 0.0
    return Verdict(float(score), bool(judged) and score >= min_score, min_score, checks)

"""Edit quality over an edit manifest (`edits.jsonl`, docs/FORMATS.md).

- Preservation: PSNR and SSIM (gaussian window, Wang et al. 2004) between the edited image and its
  source, outside the edit mask grown by `dilate` pixels.
- Fidelity with known truth (toy world): the edited image's mean colour inside the source's attribute
  region, compared with the reference colour (`color` of the reference attribute) and the original
  colour (source `extra["toy"]["attributes"][type]["color"]`): is it closer to the reference? For a
  patterned garment the colour is the mean of its two colours weighted by the pattern's share
  (`truth_color`), since that is what its pixels show on average.
- With a CLIP model: cosine similarity between the edited region's crop and the reference image, and
  the CLIP score (100 * max(cos, 0)) of the new description and of the base description vs the edit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dp_cli.data.handoff import EditRow, read_edit_rows
from dp_cli.data.images import grow_mask, load_parsing, load_rgb
from dp_cli.errors import DataError

REQUIRED = ("id", "image", "mask", "source_id", "source_image", "reference_attribute_list")


# ----------------------------------------------------------------------------- image measures


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    """PSNR in dB of two uint8-range images over `mask` (all pixels when None); None when identical."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    sel = diff[mask] if mask is not None else diff.reshape(-1, *diff.shape[2:])
    if sel.size == 0:
        raise ValueError("PSNR over an empty region")
    mse = float(np.mean(sel ** 2))
    return None if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def _gauss_kernel(sigma: float) -> np.ndarray:
    radius = int(3.5 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def gaussian_filter(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable gaussian blur of a 2-D array (same size), borders as scipy.ndimage's mode 'reflect'
    (the edge pixel repeated: d c b a | a b c d | d c b a, numpy's 'symmetric'), as scikit-image's SSIM has it."""
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    for axis in (0, 1):
        pad = [(r, r) if a == axis else (0, 0) for a in range(x.ndim)]
        xp = np.pad(x, pad, mode="symmetric")  # numpy reflects again for pads wider than the image, as scipy
        n = x.shape[axis]
        x = sum(k[i] * np.take(xp, np.arange(i, i + n), axis=axis) for i in range(len(k)))
    return x


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM of two single-channel images in the 0..255 range (population covariances, as
    scikit-image's structural_similarity with gaussian_weights=True, use_sample_covariance=False)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = gaussian_filter(a, sigma), gaussian_filter(b, sigma)
    var_a = gaussian_filter(a * a, sigma) - mu_a ** 2
    var_b = gaussian_filter(b * b, sigma) - mu_b ** 2
    cov = gaussian_filter(a * b, sigma) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, sigma: float = 1.5) -> float:
    """Mean SSIM over channels, over the pixels away from the border (as scikit-image: its
    structural_similarity(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False))
    and, when given, inside `mask`; 1.0 for identical images.

    With a mask, the map is averaged over the mask pixels inside that valid area (over all mask pixels
    when none lies there: a mask that only covers the border).
    """
    a3 = a if a.ndim == 3 else a[..., None]
    b3 = b if b.ndim == 3 else b[..., None]
    maps = np.stack([ssim_map(a3[..., c], b3[..., c], sigma) for c in range(a3.shape[-1])], -1)
    # the valid area: pixels whose whole window (win = 2 * int(3.5 * sigma + 0.5) + 1) lies inside the
    # image, i.e. the map without a border of (win - 1) // 2; the whole image when that leaves nothing
    pad = int(3.5 * sigma + 0.5)
    valid = np.zeros(maps.shape[:2], bool)
    valid[pad: maps.shape[0] - pad, pad: maps.shape[1] - pad] = True
    valid = valid if valid.any() else np.ones(maps.shape[:2], bool)
    inside = None if mask is None else mask.astype(bool)
    where = valid if inside is None else (inside & valid if (inside & valid).any() else inside)
    sel = maps[where]
    if sel.size == 0:
        raise ValueError("SSIM over an empty region")
    return float(sel.mean())


def preservation(edited: np.ndarray, reference: np.ndarray, mask: np.ndarray, dilate: int = 3,
                 sigma: float = 1.5) -> tuple[float | None, float | None]:
    """(PSNR, SSIM) of `edited` vs `reference` outside `mask` grown by `dilate` px; (None, None) if nothing is outside.

    PSNR is None also when the images are identical there (infinite PSNR). SSIM windows near the mask
    would see the edited pixels inside it, so SSIM compares the edit with the mask filled from the
    reference: only changes outside the mask lower it. SSIM averages over the outside pixels away
    from the image border (`ssim`).
    """
    outside = ~grow_mask(mask, dilate)
    if not outside.any():
        return None, None
    composite = np.where(outside[..., None] if edited.ndim == 3 else outside, edited, reference)
    return psnr(edited, reference, outside), ssim(composite, reference, outside, sigma)


def region_mean_color(image: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Mean RGB inside a boolean mask (None when the mask is empty)."""
    return image[mask].astype(np.float64).mean(0) if mask.any() else None


def bbox_crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """The image inside the bounding box of a mask (None when empty)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    return image[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


# ----------------------------------------------------------------------------- manifest evaluation


@dataclass
class AttributeScore:
    """Fidelity of one edited attribute."""

    type: str
    label: str
    mean_color: list[float] | None = None
    reference_color: list[float] | None = None
    original_color: list[float] | None = None
    distance_to_reference: float | None = None
    distance_to_original: float | None = None
    closer_to_reference: bool | None = None  # None when there is no truth or the colours are equal
    clip_similarity: float | None = None  # edited-region crop vs reference image


@dataclass
class EditScore:
    """All measures of one edited image."""

    id: str
    psnr: float | None  # None: identical outside the mask (infinite PSNR), or no pixel outside it
    ssim: float | None  # None: the (dilated) mask covers the whole image
    attributes: list[AttributeScore] = field(default_factory=list)
    clip_score: float | None = None  # new description vs edited image
    clip_score_base: float | None = None  # base description vs edited image
    status: str | None = None  # the verifier's verdict in edits.jsonl: passed | failed | None (unverified)
    verify_score: float | None = None


@dataclass
class EditQuality:
    """Aggregates over a manifest; shares are fractions in [0, 1]."""

    num_edits: int
    psnr_mean: float | None  # over edits with finite PSNR
    psnr_min: float | None
    identical_outside_mask: int
    ssim_mean: float | None
    ssim_min: float | None
    attributes_with_truth: int
    attributes_color_differs: int
    closer_to_reference: int
    share_closer_to_reference: float | None
    distance_to_reference_mean: float | None
    distance_to_original_mean: float | None
    clip_image_similarity_mean: float | None
    clip_score_mean: float | None
    clip_score_base_mean: float | None
    mask_covers_image: int = 0  # edits with no pixel outside the dilated mask: no PSNR/SSIM to measure
    verified_passed: int = 0  # edits dp edit's verifier passed (status in edits.jsonl)
    verified_failed: int = 0
    passed_color_differs: int = 0  # attributes of passed edits with colour truth that differs
    passed_closer_to_reference: int = 0
    share_closer_among_passed: float | None = None  # fidelity of what `dp export` keeps
    notes: list[str] = field(default_factory=list)  # sources that could not be read, and what that cost
    edits: list[EditScore] = field(default_factory=list)

    def to_dict(self, per_edit: bool = True) -> dict[str, Any]:
        out = asdict(self)
        if not per_edit:
            out.pop("edits")
        return out

    def summary_rows(self) -> list[tuple[str, Any]]:
        def pct(v):
            return "n/a" if v is None else f"{100 * v:.1f}%"

        def num(v, unit=""):
            return "n/a" if v is None else f"{v:.3f}{unit}"

        psnr_txt = num(self.psnr_mean, " dB") if self.psnr_mean is not None else (
            "inf (all identical)" if self.identical_outside_mask else "n/a")
        return [("edits", self.num_edits),
                ("PSNR outside mask (mean)", psnr_txt), ("PSNR outside mask (min)", num(self.psnr_min, " dB")),
                ("identical outside mask", self.identical_outside_mask),
                *([("mask covers the whole image", self.mask_covers_image)] if self.mask_covers_image else []),
                ("SSIM outside mask (mean)", num(self.ssim_mean)), ("SSIM outside mask (min)", num(self.ssim_min)),
                ("attributes with colour truth", self.attributes_with_truth),
                ("  of which reference colour differs", self.attributes_color_differs),
                ("  closer to reference than original", f"{self.closer_to_reference} "
                                                        f"({pct(self.share_closer_to_reference)})"),
                ("verifier: passed / failed", f"{self.verified_passed} / {self.verified_failed}"),
                ("  passed and closer to reference", f"{self.passed_closer_to_reference}/{self.passed_color_differs} "
                                                     f"({pct(self.share_closer_among_passed)})"),
                ("colour distance to reference (mean)", num(self.distance_to_reference_mean)),
                ("colour distance to original (mean)", num(self.distance_to_original_mean)),
                ("CLIP region vs reference (mean cos)", num(self.clip_image_similarity_mean)),
                ("CLIP score new description", num(self.clip_score_mean)),
                ("CLIP score base description", num(self.clip_score_base_mean))]


def read_manifest(path: str | Path) -> list[EditRow]:
    """Edit rows of an edits.jsonl; missing fields are errors naming the line."""
    rows = list(read_edit_rows(path, REQUIRED))
    if not rows:
        raise DataError(f"{path}: edit manifest is empty", hint="run `dp edit` first")
    return rows


def _rgb_array(path: Path, where: str) -> np.ndarray:
    """The image as an RGB uint8 array; its DataError names the manifest line."""
    try:
        return np.asarray(load_rgb(path, "file"))
    except DataError as exc:
        raise DataError(f"{where}: cannot read image ({exc.message})",
                        hint="check that the file exists and is an image") from None


def load_mask(path: Path, size: tuple[int, int], where: str) -> np.ndarray:
    """A boolean mask (>= 128) resized (nearest) to `size` = (width, height)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if im.size != size:
                im = im.resize(size, Image.NEAREST)
            return np.asarray(im) >= 128
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{where}: cannot read mask {path} ({exc.__class__.__name__})") from None


def _resize_rgb(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    return np.asarray(Image.fromarray(arr).resize(size, Image.BICUBIC))


class _Sources:
    """Source datasets of the edits, loaded once per root; None when unavailable."""

    def __init__(self):
        self._cache: dict[str, Any] = {}
        self.unreadable: dict[str, tuple[str, int]] = {}  # root -> (why, edits measured without it)
        self.missing_maps: list[Path] = []  # parsing maps the source records name but that are gone

    def record(self, row: EditRow):
        root = row.source_dataset
        if not root:
            return None, None
        if root not in self._cache:
            from dp_cli.data.loading import load_dataset

            try:
                ds = load_dataset(Path(root))
                self._cache[root] = (ds, ds.by_id())
            except DataError as exc:
                self._cache[root] = None
                self.unreadable[root] = (str(exc), 0)
        entry = self._cache[root]
        if entry is None:
            why, n = self.unreadable[root]
            self.unreadable[root] = (why, n + 1)
            return None, None
        return entry[0], entry[1].get(row.source_id)

    def parsing(self, ds, rec, size: tuple[int, int]) -> np.ndarray | None:
        path = ds.parsing_path(rec) if rec is not None else None
        if path is None:
            return None
        if not path.exists():
            self.missing_maps.append(path)
            return None
        return load_parsing(path, f"record {rec.id!r} parsing map", size)

    def notes(self) -> list[str]:
        """What the measures lack because a source could not be read (said, not silently left out)."""
        out = [f"{n} edit(s) measured without their source dataset {root} ({why}): no attribute regions and no "
               "colour truth for them" for root, (why, n) in self.unreadable.items()]
        if self.missing_maps:
            out.append(f"{len(self.missing_maps)} source parsing map(s) missing (e.g. {self.missing_maps[0]}): "
                       "colour measured over the edit mask there, not the attribute's region")
        return out


# Share of a patterned toy garment's pixels in its second colour (dp_cli.toy.render.texture): stripes are
# every third row, checks every third row or column (1 - (2/3)^2), dots a disc of radius p/2 per 2p cell.
PATTERN_SHARE = {"stripes": 1 / 3, "checks": 5 / 9, "dots": 0.196}


def truth_color(entry: dict | None, pattern_aware: bool = True) -> list[float] | None:
    """The colour a toy garment shows on average: its `color`, mixed with `pattern_color` by the pattern's
    share for striped / checked / dotted ones (a pink-and-black checked shirt is 5/9 black)."""
    if not isinstance(entry, dict):
        return None
    color = entry.get("color")
    if not (isinstance(color, (list, tuple)) and len(color) == 3):
        return None
    base = np.asarray(color, np.float64)
    second, share = entry.get("pattern_color"), PATTERN_SHARE.get(str(entry.get("pattern")), 0.0) * pattern_aware
    if share and isinstance(second, (list, tuple)) and len(second) == 3:
        base = (1 - share) * base + share * np.asarray(second, np.float64)
    return [float(c) for c in base]


def _toy_color(record, type_name: str, pattern_aware: bool = True) -> list[float] | None:
    if record is None:
        return None
    attrs = (record.extra or {}).get("toy", {}).get("attributes", {})
    return truth_color(attrs.get(type_name), pattern_aware)


def score_edit(row: EditRow, base: Path, sources: _Sources, dilate: int, sigma: float,
               pattern_aware: bool = True) -> tuple[EditScore, list[tuple[AttributeScore, np.ndarray | None, str | None]], np.ndarray]:
    """Preservation and colour fidelity of one edit; also the region crops for CLIP and the image."""
    from dp_cli.data.attributes import ATTRIBUTE_TYPES, attribute_mask

    edited = _rgb_array(base / row.image, row.where)
    size = (edited.shape[1], edited.shape[0])
    source = _resize_rgb(_rgb_array(Path(row.source_image), row.where), size)
    mask = load_mask(base / row.mask, size, row.where)
    p, s = preservation(edited, source, mask, dilate, sigma)
    score = EditScore(id=row.id, psnr=p, ssim=s, status=row.verdict, verify_score=row.score)
    ds, rec = sources.record(row)
    parsing = sources.parsing(ds, rec, size)
    crops = []
    for ref in row.references:
        region = None
        if parsing is not None and ref.type in ATTRIBUTE_TYPES:
            region = attribute_mask(parsing, ref.type, ds.label_set)
        if region is None or not region.any():
            region = mask
        attr = AttributeScore(type=str(ref.type), label=ref.label)
        _color_fidelity(attr, region_mean_color(edited, region), truth_color(ref.extra, pattern_aware),
                        _toy_color(rec, str(ref.type), pattern_aware))
        score.attributes.append(attr)
        crops.append((attr, bbox_crop(edited, region), ref.image))
    return score, crops, edited


def _color_fidelity(attr: AttributeScore, mean, ref_color, orig_color) -> None:
    if mean is None:
        return
    attr.mean_color = [round(float(v), 3) for v in mean]
    if not (isinstance(ref_color, (list, tuple)) and len(ref_color) == 3 and orig_color is not None):
        return
    ref_c, orig_c = np.asarray(ref_color, np.float64), np.asarray(orig_color, np.float64)
    attr.reference_color, attr.original_color = ref_c.tolist(), orig_c.tolist()
    attr.distance_to_reference = float(np.linalg.norm(mean - ref_c))
    attr.distance_to_original = float(np.linalg.norm(mean - orig_c))
    if not np.array_equal(ref_c, orig_c):
        attr.closer_to_reference = attr.distance_to_reference < attr.distance_to_original


def evaluate_edits(manifest: str | Path, clip: tuple[Any, Any] | None = None, dilate: int = 3, sigma: float = 1.5,
                   descriptions: dict[str, str] | None = None, batch_size: int = 32,
                   progress: Callable[[int], None] | None = None, pattern_aware: bool = True) -> EditQuality:
    """Score every edit of a manifest; `clip` = (CLIPModel, tokenizer) adds the CLIP measures.

    `descriptions` maps edit id -> new description (from annotations.jsonl); the edit's `prompt` is
    used for edits without one. `pattern_aware=False` measures patterned toy garments by their first
    colour only (the measure before `truth_color`; benchmarks print both).
    """
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    sources = _Sources()
    scores, jobs = [], []
    for row in rows:
        score, crops, edited = score_edit(row, manifest.parent, sources, dilate, sigma, pattern_aware)
        scores.append(score)
        if clip is not None:
            text = (descriptions or {}).get(score.id) or row.prompt
            jobs.append((score, crops, edited, text, row.base_description))
            if len(jobs) >= batch_size:  # flush as we go so memory stays bounded
                _clip_scores(clip, jobs, batch_size)
                jobs = []
        if progress:
            progress(1)
    if clip is not None and jobs:
        _clip_scores(clip, jobs, batch_size)
    quality = _aggregate(scores)
    quality.notes = sources.notes()
    return quality


def _clip_scores(clip: tuple[Any, Any], jobs: list, batch_size: int) -> None:
    """Fill the CLIP measures of a batch of edits in place."""
    from PIL import Image

    from dp_cli.eval.config import CLIP_MEAN, CLIP_STD
    from dp_cli.eval.embeddings import embed_images, embed_texts

    model, tokenizer = clip
    side = model.config.vision_config.image_size
    size = (side, side)
    pairs = [(attr, crop, ref) for _, crops, _, _, _ in jobs for attr, crop, ref in crops
             if crop is not None and ref and Path(ref).exists()]
    if pairs:
        crops = embed_images(model, [Image.fromarray(c) for _, c, _ in pairs], size, CLIP_MEAN, CLIP_STD, batch_size)
        refs = embed_images(model, [Path(r) for _, _, r in pairs], size, CLIP_MEAN, CLIP_STD, batch_size)
        for (attr, _, _), sim in zip(pairs, (crops * refs).sum(1)):
            attr.clip_similarity = float(np.clip(sim, -1.0, 1.0))
    images = embed_images(model, [Image.fromarray(e) for _, _, e, _, _ in jobs], size, CLIP_MEAN, CLIP_STD,
                          batch_size)
    for field_name, pos in (("clip_score", 3), ("clip_score_base", 4)):
        idx = [i for i, job in enumerate(jobs) if isinstance(job[pos], str) and job[pos].strip()]
        if not idx:
            continue
        texts = embed_texts(model, tokenizer, [jobs[i][pos] for i in idx], batch_size)
        for i, t in zip(idx, texts):
            setattr(jobs[i][0], field_name, float(100 * max(float(np.dot(images[i], t)), 0.0)))


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _aggregate(scores: list[EditScore]) -> EditQuality:
    measured = [s for s in scores if s.ssim is not None]
    finite = [s.psnr for s in measured if s.psnr is not None]
    attrs = [a for s in scores for a in s.attributes]
    truth = [a for a in attrs if a.distance_to_reference is not None]
    differs = [a for a in truth if a.closer_to_reference is not None]
    closer = sum(1 for a in differs if a.closer_to_reference)
    passed = [a for s in scores if s.status == "passed" for a in s.attributes if a.closer_to_reference is not None]
    passed_closer = sum(1 for a in passed if a.closer_to_reference)
    return EditQuality(
        num_edits=len(scores), psnr_mean=_mean(finite), psnr_min=min(finite) if finite else None,
        identical_outside_mask=sum(1 for s in measured if s.psnr is None),
        ssim_mean=_mean([s.ssim for s in measured]), ssim_min=min((s.ssim for s in measured), default=None),
        attributes_with_truth=len(truth), attributes_color_differs=len(differs), closer_to_reference=closer,
        share_closer_to_reference=closer / len(differs) if differs else None,
        distance_to_reference_mean=_mean([a.distance_to_reference for a in truth]),
        distance_to_original_mean=_mean([a.distance_to_original for a in truth]),
        clip_image_similarity_mean=_mean([a.clip_similarity for a in attrs]),
        clip_score_mean=_mean([s.clip_score for s in scores]),
        clip_score_base_mean=_mean([s.clip_score_base for s in scores]),
        mask_covers_image=len(scores) - len(measured),
        verified_passed=sum(s.status == "passed" for s in scores), verified_failed=sum(s.status == "failed" for s in scores),
        passed_color_differs=len(passed), passed_closer_to_reference=passed_closer,
        share_closer_among_passed=passed_closer / len(passed) if passed else None, edits=scores)

"""Reference attribute images as the image encoder sees them, in training and in editing.

In training a reference is the attribute's bounding box cut from a person image, with the pixels
outside its mask replaced by noise. At edit time a reference is usually a product photo (a garment on
a plain light background), an RGBA cut-out, or a picture with a mask file. `prepare_reference` turns
all of these into the training form: the foreground, tightly cropped, noise outside it.

Where the foreground comes from (`PreparedReference.method`):
- ``mask``: a mask given with the reference (catalog `mask` field, `--attribute TYPE=IMAGE@MASK`);
- ``alpha``: the image's alpha channel, when it has a transparent part;
- ``background``: a plain background estimated from the picture's border and flood-filled inwards from
  it, so a white garment on a white background is still found by its outline and shading (enclosed
  background-coloured holes, like the face opening of a hair piece, are background too; the light rim that
  resizing or JPEG leaves around the garment, up to HALO_STEPS pixels deep, is peeled off);
- ``whole``: the fallback when none of these finds a usable foreground (no plain background, or a
  foreground of almost nothing / almost everything): the picture is used as it is, with a warning.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dp_cli.data.images import grow_mask

MIN_FOREGROUND = 0.01  # share of the picture below which "no foreground was found"
MAX_FOREGROUND = 0.97  # share above which "the whole picture is foreground"
MIN_OPAQUE = 16  # opaque pixels a cut-out needs (a small garment on a large transparent canvas is fine)
BORDER_SPREAD_MAX = 12.0  # Lab distance: a border more varied than this is no plain background
ANALYSIS_SIDE = 256  # the background estimate runs on a copy at most this large
HALO_TOL = 8.0  # Lab distance: background-like pixels next to the background are a resampling halo ...
HALO_STEPS = 2  # ... up to this many pixels deep (ringing of a resized or compressed product photo)
LIGHT_BACKGROUNDS = (  # plain light colours of product photos, for training augmentation
    (255, 255, 255), (246, 246, 244), (240, 242, 246), (248, 244, 238), (236, 236, 236), (250, 248, 240))


@dataclass
class PreparedReference:
    """A reference in the encoder's form, and how it was obtained."""

    image: Image.Image  # RGB: tight crop of the foreground, noise outside it
    mask: np.ndarray  # bool, the crop's foreground
    method: str  # mask | alpha | background | whole
    foreground: float  # share of the source picture that is foreground
    warning: str | None = None

    def record(self) -> dict[str, Any]:
        """What edits.jsonl says about the preparation."""
        return {"method": self.method, "foreground": round(self.foreground, 4),
                "crop": [self.image.width, self.image.height], **({"warning": self.warning} if self.warning else {})}


# ----------------------------------------------------------------------------- colour space


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..255, [..., 3]) -> CIE Lab (D65), float64."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


# ----------------------------------------------------------------------------- foreground


def _border(a: np.ndarray, width: int = 2) -> np.ndarray:
    return np.concatenate([a[:width].reshape(-1, a.shape[-1]), a[-width:].reshape(-1, a.shape[-1]),
                           a[:, :width].reshape(-1, a.shape[-1]), a[:, -width:].reshape(-1, a.shape[-1])])


def _flood_from_border(candidate: np.ndarray) -> np.ndarray:
    """The pixels of `candidate` connected (4-neighbourhood) to the picture's border."""
    reached = np.zeros_like(candidate)
    reached[0], reached[-1], reached[:, 0], reached[:, -1] = candidate[0], candidate[-1], candidate[:, 0], candidate[:, -1]
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= candidate
        if np.array_equal(grown, reached):
            return reached
        reached = grown


def background_foreground(rgb: np.ndarray) -> np.ndarray | None:
    """Foreground of a picture on a plain background, or None when the border is not plain.

    The background colour is the median of the border in Lab; its tolerance comes from the border's
    own spread (at least 2.5 Lab units, so flat white against a near-white garment still separates).
    Background is what is within tolerance *and* connected to the border: a white garment is kept by
    its outline and shading even when parts of it match the background colour.
    """
    h, w = rgb.shape[:2]
    scale = min(1.0, ANALYSIS_SIDE / max(h, w))
    small = rgb if scale == 1.0 else np.asarray(
        Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX))
    lab = rgb_to_lab(small)
    border = _border(lab)
    bg = np.median(border, axis=0)
    spread = np.linalg.norm(border - bg, axis=1)
    if np.percentile(spread, 90) > BORDER_SPREAD_MAX:
        return None
    tol = max(2.5, 3.0 * float(np.percentile(spread, 95)))
    candidate = np.linalg.norm(lab - bg, axis=-1) <= tol
    background = _flood_from_border(candidate)
    # enclosed background-coloured areas wide enough to survive an opening (the face hole of a wig, a bag's
    # handle loop) are background too; small specks inside a garment stay foreground
    r = max(1, round(2 * min(small.shape[:2]) / 32))
    holes = grow_mask(grow_mask(candidate & ~background, r, shrink=True), r) & candidate
    fg = ~_peel_halo(background | holes, np.linalg.norm(lab - bg, axis=-1) <= max(tol, HALO_TOL))
    if scale != 1.0:
        fg = np.asarray(Image.fromarray(fg.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)) > 127
    return fg


def _peel_halo(background: np.ndarray, near: np.ndarray) -> np.ndarray:
    """`background` grown into the near-background pixels that touch it, HALO_STEPS deep: the light or dark
    rim that resizing (Lanczos ringing) or JPEG leaves around a garment is not garment. A white garment on
    white keeps its body: its outline and shading are not near-background, and the peel stops there."""
    for _ in range(HALO_STEPS):
        background = background | (grow_mask(background, 1) & near)
    return background


def alpha_foreground(image: Image.Image) -> np.ndarray | None:
    """Foreground from an alpha channel (alpha >= 128), or None when there is no transparent pixel."""
    if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
        return None
    alpha = np.asarray(image.convert("RGBA"))[..., 3]
    return alpha >= 128 if (alpha < 128).any() else None


def load_mask_file(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A reference's mask file: non-zero (or alpha >= 128 for RGBA) is foreground; resized to `size` (w, h)."""
    from dp_cli.errors import DataError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA"):
                arr = np.asarray(im.getchannel("A")) >= 128
            else:
                arr = np.asarray(im.convert("L")) >= 128
    except FileNotFoundError:
        raise DataError(f"reference mask {path} not found", hint="check the catalog's `mask` field or the "
                                                                 "--attribute TYPE=IMAGE@MASK path") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"reference mask {path} cannot be read ({exc})", hint="give a PNG of 0/255") from None
    if arr.shape != (size[1], size[0]):
        arr = np.asarray(Image.fromarray(arr.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127
    return arr


# ----------------------------------------------------------------------------- the encoder's form


def noise_seed(*parts: Any) -> int:
    """A stable seed from parts (a reference file's checksum): the same reference gets the same noise."""
    return zlib.crc32("\0".join(str(p) for p in parts).encode("utf-8"))


def masked_crop(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, background: str = "noise",
                pad: float = 0.0) -> Image.Image:
    """The mask's bounding box (grown by `pad` of its size on each side), outside the mask filled with
    uniform noise (`background="noise"`) or one plain light colour (`"plain"`)."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    py, px = int(round(pad * (y1 - y0))), int(round(pad * (x1 - x0)))
    h, w = mask.shape
    crop = np.zeros((y1 - y0 + 2 * py, x1 - x0 + 2 * px, 3), dtype=np.uint8)
    inside = np.zeros(crop.shape[:2], dtype=bool)
    sy0, sy1, sx0, sx1 = max(0, y0 - py), min(h, y1 + py), max(0, x0 - px), min(w, x1 + px)
    oy, ox = sy0 - (y0 - py), sx0 - (x0 - px)
    crop[oy:oy + sy1 - sy0, ox:ox + sx1 - sx0] = rgb[sy0:sy1, sx0:sx1]
    inside[oy:oy + sy1 - sy0, ox:ox + sx1 - sx0] = mask[sy0:sy1, sx0:sx1]
    if background == "plain":
        colour = np.asarray(LIGHT_BACKGROUNDS[int(rng.integers(len(LIGHT_BACKGROUNDS)))], dtype=np.uint8)
        fill = np.broadcast_to(colour, crop.shape)
    else:
        fill = rng.integers(0, 256, size=crop.shape, dtype=np.uint8)
    crop[~inside] = fill[~inside]
    return Image.fromarray(crop)


@dataclass(frozen=True)
class Augment:
    """Training-time variation of references: background and framing (issue: training must not depend on
    one preparation). Probabilities and ranges; `Augment()` is off."""

    plain_background: float = 0.0  # probability of a plain light background instead of noise
    max_pad: float = 0.0  # up to this share of the box added on each side
    scale: tuple[float, float] = (1.0, 1.0)  # crop resized by a factor in this range before encoding

    @property
    def active(self) -> bool:
        return self.plain_background > 0 or self.max_pad > 0 or self.scale != (1.0, 1.0)


TRAIN_AUGMENT = Augment(plain_background=0.3, max_pad=0.15, scale=(0.75, 1.5))


def training_reference(image: Image.Image | np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                       augment: Augment = Augment()) -> Image.Image:
    """A training reference: the attribute's box, noise (or a plain colour) outside its mask, varied framing.
    `image` may be its RGB uint8 array already (one conversion per example, not per attribute)."""
    rgb = image if isinstance(image, np.ndarray) else np.asarray(image.convert("RGB"))
    if not augment.active:
        return masked_crop(rgb, mask, rng)
    plain = rng.random() < augment.plain_background
    pad = float(rng.uniform(0.0, augment.max_pad)) if augment.max_pad > 0 else 0.0
    crop = masked_crop(rgb, mask, rng, background="plain" if plain else "noise", pad=pad)
    lo, hi = augment.scale
    if (lo, hi) != (1.0, 1.0):
        f = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        size = (max(1, round(crop.width * f)), max(1, round(crop.height * f)))
        crop = crop.resize(size, Image.Resampling.BICUBIC)
    return crop


def prepare_reference(image: Image.Image, mask: np.ndarray | None = None, *, seed: int = 0,
                      name: str = "reference") -> PreparedReference:
    """A reference picture in the encoder's training form; `mask` (bool, the picture's size) wins when given.

    Never a silently wrong crop: when no foreground is found, or everything is foreground, the picture is
    used whole (`method="whole"`) and `warning` says why, naming the reference.
    """
    rgb = np.asarray(image.convert("RGB"))
    total = rgb.shape[0] * rgb.shape[1]
    if mask is not None:
        fg, method = np.asarray(mask, dtype=bool), "mask"
    else:
        fg, method = alpha_foreground(image), "alpha"
        if fg is None:
            fg, method = background_foreground(rgb), "background"
    if fg is None:
        return _whole(rgb, f"{name}: no plain background or alpha channel to find the garment by; "
                           "the picture is used whole (give a mask, or an RGBA cut-out)")
    share = float(fg.sum()) / total
    if method == "alpha" and fg.sum() < MIN_OPAQUE:  # the rest is invisible: its hidden colours are no garment
        from dp_cli.errors import DataError

        raise DataError(f"{name}: only {int(fg.sum())} pixel(s) are opaque (alpha >= 128), too few to show "
                        "a garment", hint="give the cut-out with its garment opaque, or a mask")
    if share < MIN_FOREGROUND and method != "alpha":  # a small opaque garment on a large canvas is cropped
        return _whole(rgb, f"{name}: no foreground found ({method}: {100 * share:.1f}% of the picture); "
                           "the picture is used whole", share)
    if share > MAX_FOREGROUND and method != "mask":
        return _whole(rgb, f"{name}: the whole picture is foreground ({method}: {100 * share:.1f}%); it is used "
                           "as it is (right for a tight crop; otherwise give a mask)", share)
    rng = np.random.default_rng(seed)
    crop = masked_crop(rgb, fg, rng)
    ys, xs = np.nonzero(fg)
    return PreparedReference(crop, fg[ys.min():ys.max() + 1, xs.min():xs.max() + 1], method, share)


def _whole(rgb: np.ndarray, warning: str | None, share: float = 1.0) -> PreparedReference:
    return PreparedReference(Image.fromarray(rgb), np.ones(rgb.shape[:2], dtype=bool), "whole", share, warning)

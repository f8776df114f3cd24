"""The garment catalog: product-style pictures of one attribute alone on a light background, with labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dp_cli.toy.figure import product_shapes
from dp_cli.toy.palette import CATALOG_BACKGROUNDS, COLOR_NAMES, JEANS_COLORS
from dp_cli.toy.render import Frame, paint, rasterize
from dp_cli.toy.spec import NOUNS, PATTERNS, Attribute, PersonSpec, View, contrast_color

CATALOG_TYPES: tuple[str, ...] = ("hair", "uppercloth", "bottomcloth", "shoes", "bag", "hat")
CATALOG_FILE = "catalog.jsonl"
PATTERNED = {"uppercloth": ("t-shirt", "shirt", "sweater"), "bottomcloth": ("skirt",)}


def sample_item(attr_type: str, index: int, rng: np.random.Generator, colors: list[str]) -> Attribute:
    """The index-th catalog attribute of a type: colours cycle through a shuffled palette."""
    nouns = NOUNS[attr_type]
    noun = nouns[int(rng.integers(len(nouns)))]
    color = colors[index % len(colors)]
    if attr_type == "hair":
        return Attribute("hair", "hair", color, style=("long", "short")[index % 2])
    if noun == "jeans":
        color = JEANS_COLORS[index % len(JEANS_COLORS)]
    pattern, second = "plain", None
    if noun in PATTERNED.get(attr_type, ()) and rng.random() < 0.35:
        pattern = PATTERNS[1 + int(rng.integers(3))]
        second = contrast_color(rng, color)
    style = ("knee", "mini", "long")[index % 3] if noun == "skirt" else None
    return Attribute(attr_type, noun, color, pattern, second, style=style)


def render_item(attr: Attribute, side: int, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """The attribute alone, centred on a square light background of `side` pixels."""
    big = 4 * side
    frame = Frame(cx=big / 2, top=0.1 * big, size=big)
    spec = PersonSpec(0, "woman", (230, 190, 150), {attr.type: attr})
    view = View(stride=0.004 if attr.type == "shoes" else 0.02, arm_swing=0.02, bag_side=1)
    height, width = int(1.2 * big), big
    labels = rasterize(product_shapes(attr.type, spec, view), frame, height, width)
    base = np.empty((height, width, 3), dtype=np.float32)
    base[:] = background
    rgb = np.clip(np.rint(paint(labels, spec, frame, base)), 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        raise ValueError(f"catalog item {attr.label!r} drew no pixels")
    crop = Image.fromarray(rgb[ys.min():ys.max() + 1, xs.min():xs.max() + 1], "RGB")
    fit = 0.82 * side / max(crop.size)
    size = (max(1, round(crop.size[0] * fit)), max(1, round(crop.size[1] * fit)))
    crop = crop.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (side, side), background)
    canvas.paste(crop, ((side - size[0]) // 2, (side - size[1]) // 2))
    return canvas


def build_catalog(folder: Path, per_type: int, seed: int, side: int) -> list[dict[str, Any]]:
    """Write `per_type` product images per attribute type under folder/images; return the entries."""
    entries = []
    for t_index, attr_type in enumerate(CATALOG_TYPES):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7, t_index]))
        colors = [COLOR_NAMES[i] for i in rng.permutation(len(COLOR_NAMES))]
        for i in range(per_type):
            attr = sample_item(attr_type, i, rng, colors)
            bg = CATALOG_BACKGROUNDS[int(rng.integers(len(CATALOG_BACKGROUNDS)))]
            rel = f"images/{attr_type}_{i:03d}.png"
            save_png(render_item(attr, side, bg), folder / rel)
            entries.append({"image": rel, "type": attr_type, **attr.truth()})
    return entries


def save_png(image: Image.Image, path: Path) -> None:
    """PNG with fixed settings and no metadata, so the same pixels give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", compress_level=6)

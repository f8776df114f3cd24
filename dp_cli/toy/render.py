"""Rasterise a toy person: shapes -> exact ATR label map -> colours filled from that map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from dp_cli.data.attributes import ATR_LABELS, ATTRIBUTE_TYPES
from dp_cli.toy.figure import Shape, figure_shapes
from dp_cli.toy.palette import COLORS
from dp_cli.toy.spec import Attribute, PersonSpec, View

LABEL_ID = {name: i for i, name in enumerate(ATR_LABELS)}
SKIN_LABELS = tuple(LABEL_ID[n] for n in ("face", "left-leg", "right-leg", "left-arm", "right-arm"))


@dataclass(frozen=True)
class Frame:
    """Where the figure sits in the image: pixel x of its centre, y of its top, height in pixels."""

    cx: float
    top: float
    size: float

    def xy(self, p: tuple[float, float]) -> tuple[float, float]:
        return (self.cx + p[0] * self.size, self.top + p[1] * self.size)


def frame_for(view: View, height: int, width: int) -> Frame:
    """Place the figure: its height follows the view's scale, its position the view's offsets."""
    size = view.scale * min(0.94 * height, width / 0.44)
    cx = width / 2 + view.dx * max(0.0, width / 2 - 0.2 * size)
    top = (height - size) / 2 * (1 + view.dy)
    return Frame(cx, top, size)


def rasterize(shapes: list[Shape], frame: Frame, height: int, width: int) -> np.ndarray:
    """Draw the shapes in order onto a label map (uint8 ATR ids, 0 = background)."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for shape in shapes:
        value = LABEL_ID[shape.label]
        if shape.ellipse is not None:
            cx, cy, rx, ry = shape.ellipse
            x, y = frame.xy((cx, cy))
            draw.ellipse([x - rx * frame.size, y - ry * frame.size, x + rx * frame.size, y + ry * frame.size], fill=value)
        else:
            draw.polygon([frame.xy(p) for p in shape.points], fill=value)
    return np.asarray(canvas, dtype=np.uint8).copy()


def texture(attr: Attribute, frame: Frame, height: int, width: int) -> np.ndarray:
    """The attribute's colour over the whole canvas (H, W, 3), patterned in figure-relative stripes/checks/dots."""
    out = np.empty((height, width, 3), dtype=np.float32)
    out[:] = COLORS[attr.color]
    if attr.pattern == "plain" or not attr.pattern_color:
        return out
    p = max(2, int(round(0.035 * frame.size)))
    yy, xx = np.mgrid[0:height, 0:width]
    ry, rx = yy - int(round(frame.top)), xx - int(round(frame.cx))
    if attr.pattern == "stripes":
        sel = (ry // p) % 3 == 2
    elif attr.pattern == "checks":
        sel = ((ry // p) % 3 == 2) | ((rx // p) % 3 == 2)
    else:
        row = ry // (2 * p)
        dy = ry % (2 * p) - p + 0.5
        dx = (rx + (row % 2) * p) % (2 * p) - p + 0.5
        sel = dy * dy + dx * dx < (0.5 * p) ** 2
    out[sel] = COLORS[attr.pattern_color]
    return out


def paint(labels: np.ndarray, spec: PersonSpec, frame: Frame, base: np.ndarray) -> np.ndarray:
    """Fill each attribute's and the skin's pixels over `base` (float H, W, 3), then shade and outline."""
    height, width = labels.shape
    rgb = base.astype(np.float32, copy=True)
    rgb[np.isin(labels, SKIN_LABELS)] = spec.skin
    for name, attr in spec.attributes.items():
        ids = [LABEL_ID[n] for n in ATTRIBUTE_TYPES[name].labels if n in LABEL_ID]
        mask = np.isin(labels, ids)
        if mask.any():
            rgb[mask] = texture(attr, frame, height, width)[mask]
    figure = labels > 0
    xx = np.arange(width, dtype=np.float32)[None, :]
    shade = 1.0 - 0.12 * np.clip(np.abs(xx - frame.cx) / max(1.0, 0.2 * frame.size), 0, 1) ** 2
    rgb[figure] *= np.broadcast_to(shade, labels.shape)[figure][:, None]
    if "hair" in spec.attributes:
        step = max(2, int(round(0.012 * frame.size)))
        strands = (labels == LABEL_ID["hair"]) & ((np.arange(width)[None, :] // step) % 3 == 0)
        rgb[strands] *= 0.85
    edge = np.zeros_like(figure)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    rgb[edge & figure] *= 0.78 if frame.size >= 100 else 0.88
    return rgb


def _rect(rgb: np.ndarray, labels: np.ndarray, frame: Frame, ids: tuple[int, ...], box, factor=None,
          color=None) -> None:
    """Darken (factor) or recolour the pixels of `ids` inside a box given in figure units (x0, y0, x1, y1)."""
    (x0, y0), (x1, y1) = frame.xy(box[:2]), frame.xy(box[2:])
    ys = slice(max(0, int(round(y0))), max(0, int(round(y1)) + 1))
    xs = slice(max(0, int(round(x0))), max(0, int(round(x1)) + 1))
    region = np.isin(labels[ys, xs], ids)
    if factor is not None:
        rgb[ys, xs][region] *= factor
    else:
        rgb[ys, xs][region] = color


def garment_details(rgb: np.ndarray, labels: np.ndarray, spec: PersonSpec, frame: Frame, view: View) -> None:
    """Small cues that tell garments apart (collar, buttons, zip, cuffs, soles); labels are unchanged."""
    if frame.size < 80:
        return
    a, up = spec.attributes, (LABEL_ID["upper-clothes"],)
    noun = a["uppercloth"].noun if "uppercloth" in a else None
    if noun == "shirt":
        _rect(rgb, labels, frame, up, (-0.03, 0.16, 0.03, 0.185), factor=0.8)
        for y in (0.23, 0.29, 0.35, 0.41):
            _rect(rgb, labels, frame, up, (-0.003, y, 0.003, y + 0.006), color=(235, 235, 230))
    elif noun == "jacket":
        _rect(rgb, labels, frame, up, (-0.003, 0.17, 0.003, 0.53), factor=0.55)
        _rect(rgb, labels, frame, up, (-0.09, 0.505, 0.09, 0.53), factor=0.8)
    elif noun == "coat":
        for x in (-0.025, 0.022):
            for y in (0.24, 0.32, 0.40, 0.48, 0.56):
                _rect(rgb, labels, frame, up, (x, y, x + 0.006, y + 0.006), factor=0.45)
    elif noun == "sweater":
        _rect(rgb, labels, frame, up, (-0.1, 0.49, 0.1, 0.51), factor=0.82)
        for s in (-1, 1):
            wx = s * (0.11 + view.arm_swing)
            _rect(rgb, labels, frame, up, (wx - 0.03, 0.43, wx + 0.03, 0.47), factor=0.82)
    if "bottomcloth" in a and a["bottomcloth"].noun == "jeans":
        for s in (-1, 1):
            _rect(rgb, labels, frame, (LABEL_ID["pants"],), (s * 0.045 - 0.002, 0.56, s * 0.045 + 0.002, 0.9),
                  factor=1.18)
    if "shoes" in a and a["shoes"].noun == "sneakers":
        sole = (225, 225, 222) if a["shoes"].color != "white" else (150, 150, 150)
        _rect(rgb, labels, frame, (LABEL_ID["left-shoe"], LABEL_ID["right-shoe"]), (-0.5, 0.985, 0.5, 1.0), color=sole)


def face_features(rgb: np.ndarray, labels: np.ndarray, frame: Frame) -> None:
    """Eyes and a mouth, drawn only on face pixels (the label map stays 'face')."""
    r = max(1, int(round(0.007 * frame.size)))
    for fx, fy, color in ((-0.017, 0.088, (30, 24, 20)), (0.017, 0.088, (30, 24, 20)), (0.0, 0.118, (150, 60, 60))):
        x, y = (int(round(v)) for v in frame.xy((fx, fy)))
        w = r * 2 if fx == 0.0 else r
        ys, xs = slice(max(0, y - r // 2), max(0, y - r // 2) + r), slice(max(0, x - w // 2), max(0, x - w // 2) + w)
        region = labels[ys, xs] == LABEL_ID["face"]
        rgb[ys, xs][region] = color


def background(view: View, height: int, width: int) -> np.ndarray:
    """The scene behind the person: solid, vertical gradient, or a street (sky, buildings, pavement)."""
    bg = view.background
    cols = [np.array(c, dtype=np.float32) for c in bg["colors"]]
    out = np.empty((height, width, 3), dtype=np.float32)
    if bg["kind"] == "solid":
        out[:] = cols[0]
    elif bg["kind"] == "gradient":
        t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        out[:] = cols[0] * (1 - t) + cols[1] * t
    else:
        _street(out, bg, cols, height, width)
    return out


def _street(out: np.ndarray, bg: dict, cols: list[np.ndarray], height: int, width: int) -> None:
    horizon = int(round(bg["horizon"] * height))
    out[:horizon] = cols[0]
    x = 0.0
    for color, w, h in zip(bg["buildings"], bg["widths"], bg["heights"]):
        x0, x1 = int(round(x * width)), int(round((x + w) * width))
        y0 = int(round(horizon * (1 - h)))
        out[y0:horizon, x0:x1] = color
        x += w
    out[horizon:] = cols[1]
    step = max(3, height // 16)
    rows = np.arange(horizon, height)
    out[rows[(rows - horizon) % step == 0]] *= 0.8


def render_person(spec: PersonSpec, view: View | None = None, height: int = 256,
                  width: int = 128) -> tuple[Image.Image, np.ndarray]:
    """One image of a person and its exact parsing map (uint8 ATR label ids, same size)."""
    if height < 16 or width < 8:
        raise ValueError(f"image size {height}x{width} is too small; use at least 16x8 (height x width)")
    view = view or View()
    frame = frame_for(view, height, width)
    labels = rasterize(figure_shapes(spec, view), frame, height, width)
    rgb = paint(labels, spec, frame, background(view, height, width))
    garment_details(rgb, labels, spec, frame, view)
    face_features(rgb, labels, frame)
    noise = np.random.default_rng(view.noise_seed).normal(0.0, 2.0, size=rgb.shape).astype(np.float32)
    image = np.clip(np.rint(rgb + noise), 0, 255).astype(np.uint8)
    return Image.fromarray(image, "RGB"), labels

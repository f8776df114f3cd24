"""The figure's shapes, in figure units (top of the head y=0, soles y=1, body centre x=0).

Each shape carries its ATR label; drawing them in order onto a label map gives the exact parsing
map, and the colours are filled from that map, so image and parsing always agree. The person's left
is the image's right (+x), as for a person facing the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dp_cli.toy.spec import SKIRT_LENGTHS, PersonSpec, View

Point = tuple[float, float]


@dataclass(frozen=True)
class Shape:
    """A filled polygon (points) or ellipse (centre and radii) with its ATR label name."""

    label: str
    points: tuple[Point, ...] = ()
    ellipse: tuple[float, float, float, float] | None = None  # cx, cy, rx, ry


def poly(label: str, *points: Point) -> Shape:
    return Shape(label, tuple(points))


def ellipse(label: str, cx: float, cy: float, rx: float, ry: float) -> Shape:
    return Shape(label, ellipse=(cx, cy, rx, ry))


def limb(label: str, a: Point, b: Point, wa: float, wb: float) -> Shape:
    """A tapered band from a to b with half widths wa, wb."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    n = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / n, dx / n
    return poly(label, (a[0] + nx * wa, a[1] + ny * wa), (b[0] + nx * wb, b[1] + ny * wb),
                (b[0] - nx * wb, b[1] - ny * wb), (a[0] - nx * wa, a[1] - ny * wa))


def dome(label: str, cx: float, cy: float, rx: float, ry: float, n: int = 14) -> Shape:
    """The upper half of an ellipse."""
    pts = [(cx + rx * math.cos(math.pi + math.pi * i / n), cy + ry * math.sin(math.pi + math.pi * i / n))
           for i in range(n + 1)]
    return poly(label, *pts)


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


SIDES = ((-1, "right"), (1, "left"))  # image left is the person's right


def arm_joints(view: View, s: int) -> tuple[Point, Point, Point]:
    """Shoulder, elbow and wrist of the arm on side s."""
    return ((s * 0.088, 0.19), (s * (0.104 + view.arm_swing * 0.5), 0.335), (s * (0.11 + view.arm_swing), 0.47))


def ankle_x(view: View, s: int) -> float:
    return s * (0.045 + view.stride)


def figure_shapes(spec: PersonSpec, view: View) -> list[Shape]:
    """Every shape of the person in back-to-front order."""
    a = spec.attributes
    shapes: list[Shape] = []
    if "bag" in a and a["bag"].noun == "backpack":
        shapes.append(poly("bag", (-0.125, 0.2), (0.125, 0.2), (0.125, 0.45), (-0.125, 0.45)))
    shapes += hair_back(spec, view)
    shapes += legs(view)
    shapes += bottom_shapes(spec, view)
    shapes += shoe_shapes(spec, view)
    shapes.append(poly("face", (-0.019, 0.12), (0.019, 0.12), (0.022, 0.18), (-0.022, 0.18)))
    shapes += upper_shapes(spec, view)
    shapes += bag_front(spec, view)
    shapes += head_shapes(spec)
    if "bag" in a and a["bag"].noun == "handbag":
        shapes += handbag(view)
    return shapes


def hair_back(spec: PersonSpec, view: View) -> list[Shape]:
    hair = spec.attributes.get("hair")
    if hair is None:
        return []
    if hair.style == "long":
        return [poly("hair", (-0.06, 0.06), (0.06, 0.06), (0.078, 0.27), (-0.078, 0.27))]
    if hair.style == "ponytail":
        s = -view.bag_side  # the tail falls to the side away from the bag
        return [ellipse("hair", s * 0.058, 0.15, 0.022, 0.065)]
    return []


def legs(view: View) -> list[Shape]:
    out = []
    for s, side in SIDES:
        ax = ankle_x(view, s)
        out.append(limb(f"{side}-leg", (s * 0.04, 0.5), (ax, 0.94), 0.031, 0.02))
        out.append(poly(f"{side}-leg", (ax - 0.02, 0.93), (ax + 0.02, 0.93), (ax + 0.022 + s * 0.01, 0.995),
                        (ax - 0.022 + s * 0.01, 0.995)))
    return out


def bottom_shapes(spec: PersonSpec, view: View) -> list[Shape]:
    bottom = spec.attributes.get("bottomcloth")
    if bottom is None:
        return []
    if bottom.noun == "skirt":
        y = SKIRT_LENGTHS.get(bottom.style or "knee", 0.7)
        flare = 0.075 + (y - 0.45) * 0.22
        return [poly("skirt", (-0.074, 0.45), (0.074, 0.45), (flare, y), (-flare, y))]
    end = 0.64 if bottom.noun == "shorts" else 0.925
    out = [poly("pants", (-0.077, 0.45), (0.077, 0.45), (0.08, 0.56), (-0.08, 0.56))]
    for s, _ in SIDES:
        top, bot = (s * 0.042, 0.52), (ankle_x(view, s), 0.94)
        t = (end - 0.52) / (0.94 - 0.52)
        out.append(limb("pants", top, _lerp(top, bot, t), 0.037, 0.037 + (0.026 - 0.037) * t))
    return out


def shoe_shapes(spec: PersonSpec, view: View) -> list[Shape]:
    shoes = spec.attributes.get("shoes")
    if shoes is None:
        return []
    out = []
    for s, side in SIDES:
        ax, label = ankle_x(view, s), f"{side}-shoe"
        toe = s * 0.012
        if shoes.noun == "sandals":
            out.append(poly(label, (ax - 0.026 + toe, 0.982), (ax + 0.026 + toe, 0.982), (ax + 0.027 + toe, 1.0),
                            (ax - 0.027 + toe, 1.0)))
            out.append(poly(label, (ax - 0.022, 0.95), (ax + 0.022, 0.95), (ax + 0.023 + toe / 2, 0.962),
                            (ax - 0.023 + toe / 2, 0.962)))
            continue
        top, w = {"boots": (0.84, 0.025), "sneakers": (0.928, 0.03), "shoes": (0.935, 0.027)}[shoes.noun]
        out.append(poly(label, (ax - w, top), (ax + w, top), (ax + w + 0.004 + toe, 1.0), (ax - w - 0.004 + toe, 1.0)))
    return out


def upper_shapes(spec: PersonSpec, view: View) -> list[Shape]:
    upper = spec.attributes.get("uppercloth")
    noun = upper.noun if upper else None
    hem = {"coat": 0.68, "jacket": 0.53, "sweater": 0.51}.get(noun, 0.5)
    flare = 0.098 if noun == "coat" else 0.079
    out = []
    if upper is not None:
        out.append(poly("upper-clothes", (-0.05, 0.16), (0.05, 0.16), (0.094, 0.18), (0.081, 0.32), (flare, hem),
                        (-flare, hem), (-0.081, 0.32), (-0.094, 0.18)))
    for s, side in SIDES:
        sh, el, wr = arm_joints(view, s)
        out.append(limb(f"{side}-arm", sh, el, 0.021, 0.018))
        out.append(ellipse(f"{side}-arm", el[0], el[1], 0.019, 0.019))
        out.append(limb(f"{side}-arm", el, wr, 0.018, 0.015))
        out.append(ellipse(f"{side}-arm", wr[0] + s * 0.002, wr[1] + 0.022, 0.018, 0.024))
        if upper is None:
            continue
        out.append(ellipse("upper-clothes", sh[0], sh[1], 0.026, 0.024))
        if noun == "t-shirt":
            out.append(limb("upper-clothes", sh, _lerp(sh, el, 0.55), 0.026, 0.024))
        else:
            out.append(limb("upper-clothes", sh, el, 0.025, 0.022))
            out.append(ellipse("upper-clothes", el[0], el[1], 0.022, 0.022))
            out.append(limb("upper-clothes", el, _lerp(el, wr, 0.93), 0.022, 0.019))
    return out


def bag_front(spec: PersonSpec, view: View) -> list[Shape]:
    bag = spec.attributes.get("bag")
    if bag is None or bag.noun == "handbag":
        return []
    if bag.noun == "backpack":
        return [limb("bag", (s * 0.05, 0.165), (s * 0.056, 0.4), 0.012, 0.012) for s in (-1, 1)]
    s = view.bag_side
    return [limb("bag", (-s * 0.058, 0.165), (s * 0.1, 0.47), 0.008, 0.008),
            poly("bag", (s * 0.06, 0.455), (s * 0.155, 0.455), (s * 0.15, 0.56), (s * 0.065, 0.56))]


def handbag(view: View) -> list[Shape]:
    s = view.bag_side
    hx = s * (0.112 + view.arm_swing)
    return [limb("bag", (hx, 0.49), (hx - 0.03, 0.56), 0.006, 0.006), limb("bag", (hx, 0.49), (hx + 0.03, 0.56), 0.006, 0.006),
            poly("bag", (hx - 0.045, 0.55), (hx + 0.045, 0.55), (hx + 0.05, 0.65), (hx - 0.05, 0.65))]


def head_shapes(spec: PersonSpec) -> list[Shape]:
    hair, hat = spec.attributes.get("hair"), spec.attributes.get("hat")
    out = []
    if hair is not None:
        out.append(ellipse("hair", 0.0, 0.073, 0.056, 0.062))
    out.append(ellipse("face", 0.0, 0.092, 0.045, 0.056))
    if hair is not None and hair.style == "bun" and hat is None:
        out.append(ellipse("hair", 0.0, 0.012, 0.028, 0.024))
    if hat is not None:
        out += hat_shapes(hat.noun)
    return out


def hat_shapes(noun: str) -> list[Shape]:
    if noun == "cap":
        return [dome("hat", 0.0, 0.052, 0.058, 0.044), poly("hat", (-0.058, 0.044), (0.058, 0.044), (0.072, 0.058),
                                                             (-0.072, 0.058))]
    if noun == "beanie":
        return [dome("hat", 0.0, 0.056, 0.058, 0.052), poly("hat", (-0.059, 0.04), (0.059, 0.04), (0.059, 0.058),
                                                             (-0.059, 0.058))]
    return [poly("hat", (-0.044, 0.0), (0.044, 0.0), (0.048, 0.046), (-0.048, 0.046)),
            ellipse("hat", 0.0, 0.046, 0.096, 0.016)]


def product_shapes(attr_type: str, spec: PersonSpec, view: View) -> list[Shape]:
    """The shapes of one attribute alone, as for a product photo (a backpack seen from behind)."""
    bag = spec.attributes.get("bag")
    if attr_type == "bag" and bag is not None and bag.noun == "backpack":
        return [dome("bag", 0.0, 0.26, 0.09, 0.06), poly("bag", (-0.09, 0.26), (0.09, 0.26), (0.092, 0.5), (-0.092, 0.5)),
                limb("bag", (-0.03, 0.2), (0.03, 0.2), 0.006, 0.006)]
    if attr_type == "bag" and bag is not None and bag.noun == "handbag":
        return handbag(View(arm_swing=0.0, bag_side=1))
    if attr_type == "bag" and bag is not None:
        return [limb("bag", (-0.04, 0.4), (0.0, 0.3), 0.006, 0.006), limb("bag", (0.04, 0.4), (0.0, 0.3), 0.006, 0.006),
                poly("bag", (-0.05, 0.4), (0.05, 0.4), (0.048, 0.48), (-0.048, 0.48))]
    if attr_type == "hair":
        # a wig: the hair shapes with the face cut out
        return hair_back(spec, view) + [ellipse("hair", 0.0, 0.073, 0.056, 0.062),
                                        ellipse("background", 0.0, 0.092, 0.045, 0.056)]
    from dp_cli.data.attributes import ATTRIBUTE_TYPES

    labels = set(ATTRIBUTE_TYPES[attr_type].labels)
    return [s for s in figure_shapes(spec, view) if s.label in labels]

"""What a toy person is (attributes, skin) and how one image of them is taken (pose, framing, scene)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dp_cli.toy.palette import COLOR_NAMES, COLORS, HAIR_COLORS, JEANS_COLORS, SKIN_TONES

TOY_TYPES: tuple[str, ...] = ("hair", "hat", "uppercloth", "bottomcloth", "shoes", "bag")
PATTERNS: tuple[str, ...] = ("plain", "stripes", "checks", "dots")
PATTERN_ADJECTIVE = {"stripes": "striped", "checks": "checked", "dots": "dotted"}
HAIR_STYLES: tuple[str, ...] = ("short", "long", "ponytail", "bun")
NOUNS: dict[str, tuple[str, ...]] = {
    "hair": ("hair",),
    "hat": ("hat", "cap", "beanie"),
    "uppercloth": ("t-shirt", "shirt", "jacket", "coat", "sweater"),
    "bottomcloth": ("pants", "jeans", "shorts", "skirt"),
    "shoes": ("shoes", "boots", "sneakers", "sandals"),
    "bag": ("backpack", "handbag", "bag"),
}
PLURAL_NOUNS = frozenset({"pants", "jeans", "shorts", "shoes", "boots", "sneakers", "sandals"})
SKIRT_LENGTHS = {"mini": 0.60, "knee": 0.70, "long": 0.82}


@dataclass(frozen=True)
class Attribute:
    """One drawn attribute: its noun, named colour and pattern (a second colour when patterned)."""

    type: str
    noun: str
    color: str
    pattern: str = "plain"
    pattern_color: str | None = None
    style: str | None = None  # hair style, skirt length

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLORS[self.color]

    @property
    def label(self) -> str:
        """'red t-shirt', 'red and white striped skirt', 'black hair'."""
        if self.pattern == "plain" or not self.pattern_color:
            return f"{self.color} {self.noun}"
        return f"{self.color} and {self.pattern_color} {PATTERN_ADJECTIVE[self.pattern]} {self.noun}"

    def truth(self) -> dict[str, Any]:
        """The ground truth stored in records and catalog entries (docs/FORMATS.md)."""
        out: dict[str, Any] = {"label": self.label, "color": list(self.rgb), "pattern": self.pattern,
                               "noun": self.noun, "color_name": self.color}
        if self.pattern_color:
            out["pattern_color"] = list(COLORS[self.pattern_color])
            out["pattern_color_name"] = self.pattern_color
        if self.style:
            out["style"] = self.style
        return out

    @classmethod
    def from_truth(cls, type_name: str, truth: dict[str, Any]) -> "Attribute":
        """Rebuild an attribute from a record's `extra["toy"]` entry or a toy catalog entry."""
        from dp_cli.toy.palette import nearest_color

        color = truth.get("color_name") or nearest_color(truth["color"])
        second = truth.get("pattern_color_name") or (nearest_color(truth["pattern_color"])
                                                     if truth.get("pattern_color") else None)
        return cls(type_name, truth["noun"], color, truth.get("pattern", "plain"), second, truth.get("style"))


@dataclass(frozen=True)
class PersonSpec:
    """A toy person: identity-level truth shared by all their images."""

    person_id: int
    gender: str  # "woman" | "man"
    skin: tuple[int, int, int]
    attributes: dict[str, Attribute] = field(default_factory=dict)

    def with_attribute(self, attr: Attribute) -> "PersonSpec":
        """The same person with one attribute replaced or added (the ideal result of an edit)."""
        return replace(self, attributes={**self.attributes, attr.type: attr})


@dataclass(frozen=True)
class View:
    """How one image of a person is taken: framing, pose and scene."""

    scale: float = 0.9  # figure height as a share of the usable height
    dx: float = 0.0  # horizontal offset, -1..1 of the free room
    dy: float = 0.0  # vertical offset, -1..1 of the free room
    stride: float = 0.02  # extra half distance between the feet
    arm_swing: float = 0.01  # hands away from the body
    bag_side: int = 1  # +1: the person's left (image right), -1: their right
    background: dict[str, Any] = field(default_factory=lambda: {"kind": "solid", "colors": [[200, 200, 200]]})
    noise_seed: int = 0

    def truth(self) -> dict[str, Any]:
        return {"scale": round(self.scale, 4), "dx": round(self.dx, 4), "dy": round(self.dy, 4),
                "stride": round(self.stride, 4), "arm_swing": round(self.arm_swing, 4), "bag_side": self.bag_side}


def _pick(rng: np.random.Generator, items, p=None):
    return items[int(rng.choice(len(items), p=p))]


def _pattern(rng: np.random.Generator, color: str, weights) -> tuple[str, str | None]:
    pattern = _pick(rng, PATTERNS, p=weights)
    if pattern == "plain":
        return "plain", None
    return pattern, contrast_color(rng, color)


def contrast_color(rng: np.random.Generator, color: str) -> str:
    """A second colour that stands out against `color` (white or black half of the time)."""
    def far(c: str) -> bool:
        return sum((a - b) ** 2 for a, b in zip(COLORS[c], COLORS[color])) > 150 ** 2

    choices = [c for c in COLOR_NAMES if c != color and far(c)]
    if rng.random() < 0.5:
        plain = [c for c in ("white", "black") if c in choices]
        choices = plain or choices
    return _pick(rng, choices)


def sample_person(rng: np.random.Generator, person_id: int) -> PersonSpec:
    """Draw a person's gender, skin and attributes (hair, clothes, shoes; maybe a bag and a hat)."""
    gender = "woman" if rng.random() < 0.5 else "man"
    style = _pick(rng, HAIR_STYLES, p=[0.15, 0.45, 0.25, 0.15] if gender == "woman" else [0.85, 0.1, 0.05, 0.0])
    hat = None
    if rng.random() < 0.3:
        hat = Attribute("hat", _pick(rng, NOUNS["hat"]), _pick(rng, COLOR_NAMES))
        style = "short" if style == "bun" else style
    upper_noun = _pick(rng, NOUNS["uppercloth"], p=[0.3, 0.2, 0.2, 0.12, 0.18])
    color = _pick(rng, COLOR_NAMES)
    pattern, second = _pattern(rng, color, [0.6, 0.15, 0.15, 0.1] if upper_noun in ("t-shirt", "shirt", "sweater")
                               else [0.85, 0.1, 0.05, 0.0])
    upper = Attribute("uppercloth", upper_noun, color, pattern, second)
    bottom = _sample_bottom(rng, gender, coat=upper_noun == "coat")
    shoes = Attribute("shoes", _pick(rng, NOUNS["shoes"], p=[0.3, 0.2, 0.35, 0.15]), _pick(rng, COLOR_NAMES))
    attrs = {"hair": Attribute("hair", "hair", _pick(rng, HAIR_COLORS), style=style), "uppercloth": upper,
             "bottomcloth": bottom, "shoes": shoes}
    if hat:
        attrs["hat"] = hat
    if rng.random() < 0.5:
        attrs["bag"] = Attribute("bag", _pick(rng, NOUNS["bag"]), _pick(rng, COLOR_NAMES))
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    return PersonSpec(person_id, gender, skin, attrs)


def _sample_bottom(rng: np.random.Generator, gender: str, coat: bool) -> Attribute:
    nouns = ["pants", "jeans", "skirt"] if coat else list(NOUNS["bottomcloth"])
    weights = np.array([{"pants": 3, "jeans": 3, "shorts": 1.5, "skirt": 3 if gender == "woman" else 0}[n]
                        for n in nouns], dtype=float)
    noun = _pick(rng, nouns, p=weights / weights.sum())
    if noun == "jeans":
        return Attribute("bottomcloth", noun, _pick(rng, JEANS_COLORS))
    color = _pick(rng, COLOR_NAMES)
    if noun == "skirt":
        pattern, second = _pattern(rng, color, [0.6, 0.15, 0.15, 0.1])
        length = _pick(rng, ("knee", "long") if coat else tuple(SKIRT_LENGTHS))
        return Attribute("bottomcloth", noun, color, pattern, second, style=length)
    return Attribute("bottomcloth", noun, color)


def sample_view(rng: np.random.Generator) -> View:
    """Draw one image's framing, pose and background."""
    return View(scale=float(rng.uniform(0.82, 0.97)), dx=float(rng.uniform(-0.8, 0.8)),
                dy=float(rng.uniform(-0.7, 0.7)), stride=float(rng.uniform(0.0, 0.05)),
                arm_swing=float(rng.uniform(-0.01, 0.05)), bag_side=1 if rng.random() < 0.5 else -1,
                background=sample_background(rng), noise_seed=int(rng.integers(2**31)))


def sample_background(rng: np.random.Generator) -> dict[str, Any]:
    """A solid, gradient or street-like scene description (colours as RGB lists)."""
    kind = _pick(rng, ("solid", "gradient", "street"), p=[0.25, 0.3, 0.45])

    def col(lo: int, hi: int) -> list[int]:
        return [int(v) for v in rng.integers(lo, hi, size=3)]

    if kind == "solid":
        return {"kind": kind, "colors": [col(110, 235)]}
    if kind == "gradient":
        return {"kind": kind, "colors": [col(120, 245), col(70, 200)]}
    grey = int(rng.integers(95, 175))
    buildings = [col(70, 200) for _ in range(int(rng.integers(3, 7)))]
    return {"kind": kind, "horizon": float(rng.uniform(0.3, 0.55)), "colors": [col(170, 250), [grey] * 3],
            "buildings": buildings, "widths": [float(w) for w in rng.uniform(0.15, 0.45, size=len(buildings))],
            "heights": [float(h) for h in rng.uniform(0.4, 1.0, size=len(buildings))]}

"""The named colours the toy world draws with; caption colour words are these names."""

from __future__ import annotations

# Every drawn garment colour has one of these names; captions and catalog labels use the name.
COLORS: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 32),
    "white": (238, 238, 235),
    "gray": (128, 128, 132),
    "red": (200, 32, 38),
    "blue": (38, 72, 196),
    "green": (36, 140, 62),
    "yellow": (240, 212, 36),
    "orange": (238, 128, 28),
    "pink": (238, 140, 182),
    "purple": (118, 48, 150),
    "brown": (116, 72, 38),
    "beige": (214, 194, 150),
    "gold": (198, 156, 58),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)

HAIR_COLORS: tuple[str, ...] = ("black", "brown", "gold", "gray", "white", "red")
JEANS_COLORS: tuple[str, ...] = ("blue", "black", "gray", "white")

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (246, 214, 188), (232, 190, 152), (204, 152, 110), (160, 110, 72), (110, 74, 48),
)

# Light colours for product-photo backgrounds.
CATALOG_BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255), (246, 246, 244), (240, 242, 246), (248, 244, 238),
)


def nearest_color(rgb) -> str:
    """The palette name closest (Euclidean RGB) to a colour."""
    r, g, b = (float(v) for v in rgb)
    return min(COLORS, key=lambda n: (COLORS[n][0] - r) ** 2 + (COLORS[n][1] - g) ** 2 + (COLORS[n][2] - b) ** 2)

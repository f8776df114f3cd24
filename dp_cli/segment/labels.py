"""Label sets of parsing maps and their conversion to our ATR ids (the label set every stage reads).

A conversion is a lookup table: source label id -> ATR id. ATR and LIP are built in; other sets are
given as a small table {id: our label name}. Model labels are matched by name ("Upper-clothes").
"""

from __future__ import annotations

import numpy as np

from dp_cli.data.attributes import ATR_LABELS, ATTRIBUTE_TYPES, LABEL_SETS

INVALID = 255  # lookup-table value of ids outside the source label set

# LIP names without an ATR label. Gloves and socks carry no attribute type; they become arm and leg
# pixels (ATR counts hands as arms) so they do not punch background holes into the person.
LIP_TO_ATR_NAME: dict[str, str] = {
    "coat": "upper-clothes", "jumpsuits": "pants", "glove": "left-arm", "socks": "left-leg",
}
ALIASES: dict[str, str] = {
    "upperclothes": "upper-clothes", "upper-clothing": "upper-clothes", "upper-body-clothes": "upper-clothes",
    "glasses": "sunglasses", "sun-glasses": "sunglasses", "jumpsuit": "jumpsuits", "gloves": "glove",
    "sock": "socks", "shoe-left": "left-shoe", "shoe-right": "right-shoe", "bg": "background",
    "trousers": "pants", "shoes": "left-shoe", "arms": "left-arm", "legs": "left-leg",
}


def normalize_name(name: str) -> str:
    """'Upper_clothes' / 'upper clothes' -> 'upper-clothes'."""
    key = "-".join(str(name).strip().lower().replace("_", " ").split())
    return ALIASES.get(key, key)


def atr_id(name: str) -> int | None:
    """Our ATR id for a label name from ATR, LIP or a close spelling; None when unknown."""
    key = normalize_name(name)
    key = LIP_TO_ATR_NAME.get(key, key)
    return ATR_LABELS.index(key) if key in ATR_LABELS else None


def lut_from_names(names: dict[int, str], where: str) -> np.ndarray:
    """Lookup table from {source id: label name}; ValueError naming every unknown name."""
    lut = np.full(256, INVALID, dtype=np.uint8)
    unknown = []
    for src, name in sorted(names.items()):
        if not 0 <= int(src) < 256:
            raise ValueError(f"{where}: label id {src} outside 0..255")
        target = atr_id(name)
        if target is None:
            unknown.append(f"{src}={name!r}")
        else:
            lut[int(src)] = target
    if unknown:
        raise ValueError(f"{where}: label(s) {', '.join(unknown)} have no counterpart in our label set "
                         f"({', '.join(ATR_LABELS)})")
    return lut


def lut_for_set(label_set: str) -> np.ndarray:
    """Lookup table of a built-in label set ('atr' or 'lip')."""
    return lut_from_names(dict(enumerate(LABEL_SETS[label_set])), label_set)


def convert_map(ids: np.ndarray, lut: np.ndarray, where: str) -> np.ndarray:
    """Source ids -> ATR ids; ValueError naming the ids that are outside the source set."""
    out = lut[ids]
    if (out == INVALID).any():
        bad = sorted(int(v) for v in np.unique(ids[out == INVALID]))
        valid = [int(i) for i in np.flatnonzero(lut != INVALID)]
        raise ValueError(f"{where}: label id(s) {bad[:8]} outside the label set (valid ids: "
                         f"{_ranges(valid)})")
    return out


def types_present(atr_map: np.ndarray) -> list[str]:
    """Attribute types with at least one pixel in an ATR map."""
    present = set(np.flatnonzero(np.bincount(atr_map.ravel(), minlength=len(ATR_LABELS))).tolist())
    return [name for name, t in ATTRIBUTE_TYPES.items()
            if any(ATR_LABELS.index(lab) in present for lab in t.labels if lab in ATR_LABELS)]


def _ranges(values: list[int]) -> str:
    if not values:
        return "none"
    out, start, prev = [], values[0], values[0]
    for v in values[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(f"{start}" if start == prev else f"{start}..{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)

"""Attribute types: which parsing labels they cover and which caption nouns name them.

Also the caption helpers every stage shares: find an attribute's noun in a description, the
adjective phrase in front of it, drop those adjectives, or substitute the whole phrase.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

# The 18 ATR labels of the SegFormer clothes parser (mattmdjaga/segformer_b2_clothes).
ATR_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "sunglasses", "upper-clothes", "skirt", "pants", "dress", "belt",
    "left-shoe", "right-shoe", "face", "left-leg", "right-leg", "left-arm", "right-arm", "bag", "scarf",
)
# The 20 LIP labels (SCHP and others).
LIP_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat", "socks", "pants",
    "jumpsuits", "scarf", "skirt", "face", "left-arm", "right-arm", "left-leg", "right-leg", "left-shoe",
    "right-shoe",
)
LABEL_SETS: dict[str, tuple[str, ...]] = {"atr": ATR_LABELS, "lip": LIP_LABELS}


@dataclass(frozen=True)
class AttributeType:
    """One editable attribute: its parsing label names and the nouns that name it in captions."""

    name: str
    labels: tuple[str, ...]
    nouns: tuple[str, ...]
    phrase: str  # phrase added to a caption whose noun is missing: "{label}" is the reference label


ATTRIBUTE_TYPES: dict[str, AttributeType] = {t.name: t for t in (
    AttributeType("hair", ("hair",), ("hair", "ponytail", "braid", "bun"), "with {label}"),
    AttributeType("hat", ("hat",), ("hat", "cap", "helmet", "beanie", "hood"), "wearing a {label}"),
    AttributeType("sunglasses", ("sunglasses",), ("sunglasses", "glasses", "shades"), "wearing {label}"),
    AttributeType("uppercloth", ("upper-clothes", "coat"), (
        "t-shirt", "tshirt", "tee", "shirt", "jacket", "coat", "sweater", "hoodie", "top", "blouse", "vest",
        "sweatshirt", "cardigan", "jumper", "blazer", "parka", "windbreaker", "polo", "tank top"),
        "wearing a {label}"),
    AttributeType("bottomcloth", ("skirt", "pants", "jumpsuits"), (
        "pants", "jeans", "trousers", "shorts", "skirt", "leggings", "capris", "slacks", "sweatpants",
        "joggers", "tights"), "and {label}"),
    AttributeType("dress", ("dress",), ("dress", "gown"), "wearing a {label}"),
    AttributeType("shoes", ("left-shoe", "right-shoe"), (
        "shoes", "shoe", "boots", "boot", "sneakers", "sneaker", "sandals", "sandal", "heels", "slippers",
        "loafers", "trainers", "footwear", "flats"), "and {label}"),
    AttributeType("bag", ("bag",), ("bag", "backpack", "handbag", "purse", "satchel", "tote", "suitcase"),
                  "carrying a {label}"),
    AttributeType("belt", ("belt",), ("belt",), "with a {label}"),
    AttributeType("scarf", ("scarf",), ("scarf",), "with a {label}"),
)}

# Seed spelling: "hair_uppercloth_bottomcloth".
DEFAULT_TYPES: tuple[str, ...] = ("hair", "uppercloth", "bottomcloth")

_BOUNDARY = {
    "a", "an", "the", "his", "her", "their", "its", "my", "of", "with", "in", "on", "at", "wearing", "wears",
    "wear", "is", "are", "has", "have", "and", "or", "carrying", "carries", "holding", "dressed", "over",
    "under", "to", "by", "pair", "some", "who", "while", "also", "he", "she", "they", "man", "woman", "person",
    "lady", "girl", "boy", "guy", "that", "which", "for", "from", "plus", "as", "into",
}
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def parse_types(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'hair_uppercloth_bottomcloth', 'hair,uppercloth' (as --help shows a default) or a list -> validated type
    names (ValueError on unknown or wrong types)."""
    if not isinstance(spec, (str, list, tuple)) or any(not isinstance(n, str) for n in spec):
        raise ValueError("expected a list of type names, or one string like 'hair_uppercloth'")
    names = re.split(r"[_,]", spec) if isinstance(spec, str) else [n for item in spec for n in re.split(r"[_,]", item)]
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = [n for n in names if n not in ATTRIBUTE_TYPES]
    if unknown:
        raise ValueError(f"unknown attribute type(s) {unknown}; known: {', '.join(ATTRIBUTE_TYPES)}")
    if not names:
        raise ValueError("no attribute types given")
    return tuple(dict.fromkeys(names))


@functools.lru_cache(maxsize=None)
def label_ids(type_name: str, label_set: str = "atr") -> tuple[int, ...]:
    """Label ids of an attribute type in a label set."""
    names = LABEL_SETS[label_set]
    return tuple(i for i, n in enumerate(names) if n in ATTRIBUTE_TYPES[type_name].labels)


def attribute_mask(parsing: np.ndarray, type_name: str, label_set: str = "atr") -> np.ndarray:
    """Boolean mask of an attribute type in a label map."""
    ids = label_ids(type_name, label_set)
    if not ids:
        return np.zeros(parsing.shape, dtype=bool)
    mask = parsing == ids[0]  # a few comparisons: np.isin sorts, many times slower on one small map
    for i in ids[1:]:
        mask |= parsing == i
    return mask


@dataclass(frozen=True)
class NounMatch:
    """An attribute noun found in a caption, with its adjective phrase."""

    type: str
    noun: str
    start: int  # char span of the noun
    end: int
    phrase_start: int  # char start of the adjectives in front of the noun (== start when none)


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def _all_nouns() -> dict[str, str]:
    return {noun: t.name for t in ATTRIBUTE_TYPES.values() for noun in t.nouns}


_NOUN_TO_TYPE = _all_nouns()


def find_nouns(caption: str, types: tuple[str, ...] | list[str] | None = None) -> list[NounMatch]:
    """Every attribute noun of the given types in the caption, in order (multi-word nouns first)."""
    wanted = set(types) if types else set(ATTRIBUTE_TYPES)
    words = _words(caption)
    lower = [w.lower() for w, _, _ in words]
    found, i = [], 0
    while i < len(words):
        two = f"{lower[i]} {lower[i + 1]}" if i + 1 < len(words) else None
        if two in _NOUN_TO_TYPE:
            noun, j = two, i + 1
        elif lower[i] in _NOUN_TO_TYPE:
            noun, j = lower[i], i
        else:
            i += 1
            continue
        typ = _NOUN_TO_TYPE[noun]
        start = _phrase_start(words, lower, i)
        head = _of_head(lower, j, typ)  # "a bun of black hair": the attribute is "black hair"
        if head is not None:
            i, j = head
        if typ in wanted:
            found.append(NounMatch(typ, caption[words[i][1]:words[j][2]], words[i][1], words[j][2], start))
        i = j + 1
    return found


def _of_head(lower: list[str], j: int, typ: str) -> tuple[int, int] | None:
    """For 'NOUN of [adjectives] NOUN2' with both nouns of one type: NOUN2's word span (i, j), else None.

    The phrase then runs from the first noun's adjectives to NOUN2, so 'a bun of black hair' is one
    attribute whose noun is 'hair' and whose adjectives ('bun of black') are dropped or replaced whole.
    """
    if j + 2 >= len(lower) or lower[j + 1] != "of":
        return None
    k = j + 2
    while k < len(lower):
        two = f"{lower[k]} {lower[k + 1]}" if k + 1 < len(lower) else None
        if two in _NOUN_TO_TYPE:
            return (k, k + 1) if _NOUN_TO_TYPE[two] == typ else None
        if lower[k] in _NOUN_TO_TYPE:
            return (k, k) if _NOUN_TO_TYPE[lower[k]] == typ else None
        if lower[k] in _BOUNDARY and lower[k] not in ("and", "or"):
            return None
        k += 1
    return None


def _phrase_start(words: list[tuple[str, int, int]], lower: list[str], i: int) -> int:
    """Walk back over adjectives ('red and yellow') until a determiner, verb or another noun."""
    k = i
    while k > 0:
        prev = lower[k - 1]
        if prev in ("and", "or") and k >= 2 and lower[k - 2] not in _BOUNDARY and lower[k - 2] not in _NOUN_TO_TYPE:
            k -= 1
            continue
        if prev in _BOUNDARY or prev in _NOUN_TO_TYPE:
            break
        k -= 1
    return words[k][1] if k < i else words[i][1]


def first_noun(caption: str, type_name: str) -> NounMatch | None:
    """The first noun of a type in the caption, or None."""
    hits = find_nouns(caption, (type_name,))
    return hits[0] if hits else None


def drop_adjectives(caption: str, matches: list[NounMatch]) -> str:
    """'a red and yellow skirt' -> 'a skirt' for each match (spans from the same caption)."""
    out = caption
    for m in sorted(matches, key=lambda m: m.start, reverse=True):
        out = out[:m.phrase_start] + out[m.start:]
    return out


def substitute(caption: str, match: NounMatch, new_phrase: str) -> str:
    """Replace the adjective phrase and noun of `match` by `new_phrase` ('white skirt')."""
    return caption[:match.phrase_start] + new_phrase + caption[match.end:]


def add_phrase(caption: str, type_name: str, label: str) -> str:
    """Append a phrase naming an attribute whose noun is missing ('..., and white sandals.')."""
    phrase = ATTRIBUTE_TYPES[type_name].phrase.format(label=label)
    body = caption.rstrip().rstrip(".")
    return f"{body}, {phrase}."

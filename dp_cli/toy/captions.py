"""CUHK-PEDES-style captions generated from the drawn attributes (only the ones visible in the image)."""

from __future__ import annotations

import numpy as np

from dp_cli.toy.spec import PLURAL_NOUNS, Attribute, PersonSpec

SUBJECTS = {"woman": ("woman", "lady", "young woman", "girl"), "man": ("man", "young man", "guy", "gentleman")}
PRONOUNS = {"woman": ("She", "her"), "man": ("He", "his")}


def hair_phrase(hair: Attribute, rng: np.random.Generator) -> str:
    """'long black hair', 'black hair tied in a ponytail', 'short brown hair'."""
    style = hair.style or "short"
    if style == "ponytail":
        return f"{hair.color} hair tied in a ponytail" if rng.random() < 0.5 else f"long {hair.color} hair in a ponytail"
    if style == "bun":
        return f"{hair.color} hair in a bun"
    return f"{style} {hair.color} hair"


def noun_phrase(attr: Attribute, rng: np.random.Generator) -> str:
    """The attribute with its article: 'a red t-shirt', 'blue jeans', 'a pair of white sneakers'."""
    if attr.noun in PLURAL_NOUNS:
        if attr.type == "shoes" and rng.random() < 0.4:
            return f"a pair of {attr.label}"
        return attr.label
    return f"an {attr.label}" if attr.label[0] in "aeiou" else f"a {attr.label}"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _bag_sentence(bag: Attribute, pro: str, poss: str, rng: np.random.Generator) -> str:
    where = {"backpack": f" on {poss} back", "handbag": f" in {poss} hand", "bag": f" over {poss} shoulder"}[bag.noun]
    options = (f"{pro} carries {noun_phrase(bag, rng)}.", f"{pro} is carrying {noun_phrase(bag, rng)}{where}.",
               f"{pro} has {noun_phrase(bag, rng)}{where}.")
    return options[int(rng.integers(len(options)))]


def _hat_sentence(hat: Attribute, pro: str, poss: str, rng: np.random.Generator) -> str:
    options = (f"{pro} wears {noun_phrase(hat, rng)}.", f"{pro} has {noun_phrase(hat, rng)} on {poss} head.",
               f"{pro} is also wearing {noun_phrase(hat, rng)}.")
    return options[int(rng.integers(len(options)))]


def _main_sentence(template: int, subj: str, pro: str, hair: str | None, clothes: str | None) -> str:
    a = "An" if subj[0] in "aeiou" else "A"
    if not clothes:
        return f"{a} {subj} with {hair}." if hair else f"{a} {subj} standing."
    if not hair:
        return (f"{a} {subj} is wearing {clothes}.", f"The {subj} wears {clothes}.",
                f"This {subj} is dressed in {clothes}.", f"{a} {subj} walking in {clothes}.")[template % 4]
    return (f"{a} {subj} with {hair} is wearing {clothes}.",
            f"The {subj} has {hair} and wears {clothes}.",
            f"This {subj} is dressed in {clothes}. {pro} has {hair}.",
            f"{a} {subj} walking in {clothes}. {pro} has {hair}.",
            f"The {subj} with {hair} is dressed in {clothes}.")[template % 5]


def make_captions(spec: PersonSpec, visible: set[str], rng: np.random.Generator, count: int) -> list[str]:
    """`count` captions with different templates, naming exactly the visible attributes."""
    templates = rng.permutation(5)[:count]
    return [_caption(spec, visible, rng, int(t)) for t in templates]


def _caption(spec: PersonSpec, visible: set[str], rng: np.random.Generator, template: int) -> str:
    a = {k: v for k, v in spec.attributes.items() if k in visible}
    subjects = SUBJECTS[spec.gender]
    subj = subjects[int(rng.integers(len(subjects)))]
    pro, poss = PRONOUNS[spec.gender]
    hair = hair_phrase(a["hair"], rng) if "hair" in a else None
    clothes = [noun_phrase(a[t], rng) for t in ("uppercloth", "bottomcloth", "shoes") if t in a]
    sentences = [_main_sentence(template, subj, pro, hair, _join(clothes) if clothes else None)]
    extras = []
    if "hat" in a:
        extras.append(_hat_sentence(a["hat"], pro, poss, rng))
    if "bag" in a:
        extras.append(_bag_sentence(a["bag"], pro, poss, rng))
    if len(extras) == 2 and rng.random() < 0.5:
        extras.reverse()
    return " ".join(sentences + extras)

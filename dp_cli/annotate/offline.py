"""The offline backend's rewriting: substitute each attribute phrase in the sentence, or add it."""

from __future__ import annotations

import re

from dp_cli.annotate.records import Attribute, Item
from dp_cli.data.attributes import ATTRIBUTE_TYPES, add_phrase, find_nouns, first_noun, substitute

_ARTICLE = re.compile(r"\b([Aa]n?)\s+$")


def attribute_type(attr: Attribute) -> str | None:
    """The attribute's type: given, else the type of the first attribute noun in its label."""
    if attr.type in ATTRIBUTE_TYPES:
        return attr.type
    hits = find_nouns(attr.label)
    return hits[0].type if hits else None


def rewrite(item: Item) -> str:
    """Deterministic rewrite: 'black boots' -> 'white sandals' in place; missing kinds get a phrase."""
    text = item.description
    for attr in item.attributes:
        typ = attribute_type(attr)
        match = first_noun(text, typ) if typ else None
        if match is not None:
            head = _fix_article(text[:match.phrase_start], attr.label)
            text = head + substitute(text, match, attr.label)[match.phrase_start:]
        elif typ is not None:
            text = add_phrase(text, typ, attr.label)
        else:
            text = f"{text.rstrip().rstrip('.')}, with {attr.label}."
    return text[:1].upper() + text[1:]


def _fix_article(head: str, label: str) -> str:
    """'a' / 'an' in front of the new phrase agrees with its first letter ('an orange shirt')."""
    m = _ARTICLE.search(head)
    if not m:
        return head
    want = "an" if label[:1].lower() in "aeiou" else "a"
    want = want.capitalize() if m.group(1)[0].isupper() else want
    return head[:m.start(1)] + want + head[m.end(1):]

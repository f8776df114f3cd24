"""Checks on an LLM answer, in code: empty, truncated, refusal, echoed prompt, missing attribute."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from dp_cli.annotate.records import Item
from dp_cli.data.attributes import find_nouns

_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry[,.!]|i apologi[sz]e|my apologies|i can(?:'|no)t|i cannot|i am unable|"
    r"i'?m unable|i won'?t|as an ai\b|unfortunately, i)", re.IGNORECASE)
_STOP = {"a", "an", "the", "of", "and", "with", "in", "on", "pair", "some", "colored", "coloured"}
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class Verdict:
    """The cleaned answer, or the reason it was rejected."""

    text: str
    reason: str | None = None  # empty | truncated | refusal | echoed_prompt | missing_attribute | malformed
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def extract_text(content: str | None, structured: bool) -> tuple[str | None, str | None]:
    """The rewritten sentence from a plain or JSON answer -> (text, error)."""
    if content is None:
        return None, None
    text = content.strip()
    if not structured:
        return _strip_wrapping(text), None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None, "answer is not the requested JSON object"
    if not isinstance(obj, dict) or not isinstance(obj.get("rewritten"), str):
        return None, "JSON answer lacks a string 'rewritten'"
    return _strip_wrapping(obj["rewritten"].strip()), None


def _strip_wrapping(text: str) -> str:
    """Drop a 'Rewritten sentence:' lead-in and surrounding quotes that chat models like to add."""
    text = re.sub(r"^(rewritten( sentence| description)?|answer|output)\s*:\s*", "", text, flags=re.IGNORECASE)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def check_answer(item: Item, content: str | None, finish_reason: str | None, *, refusal: str | None = None,
                 structured: bool = False, echo_markers: list[str] = ()) -> Verdict:
    """Accept an answer only if it is complete, not a refusal or echo, and names every attribute."""
    if refusal or finish_reason == "content_filter":
        return Verdict("", "refusal", (refusal or "content filter")[:200])
    if finish_reason == "length":
        return Verdict(content or "", "truncated", "finish_reason=length; raise max_tokens")
    text, err = extract_text(content, structured)
    if err:
        return Verdict(content or "", "malformed", err)
    if not text:
        return Verdict("", "empty", "no text in the answer")
    if _REFUSAL.search(text):
        return Verdict(text, "refusal", text[:200])
    low = text.lower()
    if any(m and m in low for m in echo_markers) or re.search(r"^\s*(sentence|attributes)\s*:", low, re.M):
        return Verdict(text, "echoed_prompt", text[:200])
    missing = [a.label for a in item.attributes if not mentions(text, a.label)]
    if missing:
        return Verdict(text, "missing_attribute", "; ".join(missing))
    return Verdict(text)


def mentions(text: str, label: str) -> bool:
    """True when the text names the label: its attribute noun(s) as words, its other key words anywhere."""
    words = set(_WORD.findall(text.lower()))
    low = text.lower()
    nouns = [m.noun.lower() for m in find_nouns(label)]
    for noun in nouns:
        forms = {noun, noun.rstrip("s"), noun + "s", noun + "es"}
        if not (forms & words or (" " in noun and noun in low)):
            return False
    noun_words = {w for n in nouns for w in _WORD.findall(n)}
    keys = [w for w in _WORD.findall(label.lower()) if w not in _STOP and w not in noun_words]
    return all(k in low or k.replace("-", " ") in low for k in keys)

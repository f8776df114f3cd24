"""Caption quality of `dp annotate` output (annotations.jsonl joined with edits.jsonl by edit id).

Phrase matching works on words (lower case; "t-shirt" is one word): a label is *named* when its words
appear contiguously in the description. A replaced phrase is *still named* when its words appear
contiguously outside the occurrences of the new labels (so "blue jeans" -> "black jeans" is not
flagged because of the shared noun).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from dp_cli.data.handoff import EditRow, read_annotation_rows, read_edit_rows
from dp_cli.errors import DataError

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-case words of a text ("t-shirt" and "don't" stay one word)."""
    return _WORD.findall(text.lower())


def find_phrase(haystack: list[str], phrase: list[str], blocked: set[int] | None = None) -> list[int]:
    """Start positions where `phrase` occurs contiguously in `haystack`, avoiding `blocked` positions."""
    n = len(phrase)
    if n == 0:
        return []
    blocked = blocked or set()
    return [i for i in range(len(haystack) - n + 1)
            if haystack[i: i + n] == phrase and not blocked.intersection(range(i, i + n))]


def names_label(description: str, label: str) -> bool:
    """Does the description name the attribute label (its words, contiguously)?"""
    return bool(find_phrase(words(description), words(label)))


def still_names_replaced(description: str, replaced: str, new_labels: Iterable[str]) -> bool:
    """Does the replaced phrase still occur outside the occurrences of the new labels?"""
    desc, old = words(description), words(replaced)
    if not old or any(old == words(lab) for lab in new_labels):
        return False
    blocked: set[int] = set()
    for lab in new_labels:
        lw = words(lab)
        for i in find_phrase(desc, lw):
            blocked.update(range(i, i + len(lw)))
    return bool(find_phrase(desc, old, blocked))


@dataclass
class TextStats:
    """Length (words) and vocabulary of a set of texts."""

    count: int
    words_mean: float | None
    words_median: float | None
    words_min: int | None
    words_max: int | None
    vocabulary: int


def text_stats(texts: list[str]) -> TextStats:
    lengths = [len(words(t)) for t in texts]
    vocab = {w for t in texts for w in words(t)}
    if not lengths:
        return TextStats(0, None, None, None, None, 0)
    return TextStats(len(texts), float(np.mean(lengths)), float(np.median(lengths)), int(min(lengths)),
                     int(max(lengths)), len(vocab))


@dataclass
class CaptionQuality:
    """Caption measures; shares are fractions in [0, 1] of the joined records."""

    num_annotations: int
    num_joined: int
    edits_without_annotation: int  # passed (or unverified) edits that annotate should have written
    annotations_without_edit: int
    share_names_all_attributes: float | None
    share_names_replaced: float | None
    unchanged_from_base: int
    duplicates: int  # descriptions equal (after normalising case and spaces) to an earlier one
    descriptions: TextStats
    source_captions: TextStats | None
    words_outside_source_vocabulary: float | None  # share of description words never seen in the source
    new_words: list[str] = field(default_factory=list)  # most frequent of those words
    missing_attribute_ids: list[str] = field(default_factory=list)
    replaced_still_named_ids: list[str] = field(default_factory=list)
    failed_edits: int = 0  # edits without annotation that failed verification (annotate skips them by default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_rows(self) -> list[tuple[str, Any]]:
        def pct(v):
            return "n/a" if v is None else f"{100 * v:.1f}%"

        d, s = self.descriptions, self.source_captions
        rows = [("annotations", self.num_annotations), ("joined with edits", self.num_joined),
                ("edits without annotation", self.edits_without_annotation),
                ("failed edits (not annotated)", self.failed_edits),
                ("annotations without edit", self.annotations_without_edit),
                ("name every new attribute", pct(self.share_names_all_attributes)),
                ("still name a replaced attribute", pct(self.share_names_replaced)),
                ("unchanged from base description", self.unchanged_from_base),
                ("duplicate descriptions", self.duplicates),
                ("words per description (mean / median)", _pair(d.words_mean, d.words_median)),
                ("vocabulary of descriptions", d.vocabulary)]
        if s is not None:
            rows += [("words per source caption (mean / median)", _pair(s.words_mean, s.words_median)),
                     ("vocabulary of source captions", s.vocabulary),
                     ("description words outside source vocabulary", pct(self.words_outside_source_vocabulary)),
                     ("most frequent new words", ", ".join(self.new_words[:10]) or "-")]
        return rows


def _pair(a, b) -> str:
    return "n/a" if a is None else f"{a:.1f} / {b:.1f}"


def _labels(edit: EditRow) -> tuple[list[str], list[str]]:
    return [r.label for r in edit.references], [r.replaced for r in edit.references if r.replaced]


def evaluate_captions(annotations: str | Path, edits: str | Path,
                      source_captions: list[str] | None = None) -> CaptionQuality:
    """Caption measures of annotations.jsonl joined with edits.jsonl; source captions for comparison."""
    anns = {row.id: row for row in read_annotation_rows(annotations, ("id", "description"))}
    eds = {row.id: row for row in read_edit_rows(edits, ("id",))}
    joined = [(anns[k], eds[k]) for k in anns if k in eds]
    names_all, replaced_named, missing_ids, replaced_ids = 0, 0, [], []
    with_replaced = 0
    for ann, edit in joined:
        labels, replaced = _labels(edit)
        desc = ann.description
        if all(names_label(desc, lab) for lab in labels):
            names_all += 1
        else:
            missing_ids.append(ann.id)
        if replaced:
            with_replaced += 1
            if any(still_names_replaced(desc, old, labels) for old in replaced):
                replaced_named += 1
                replaced_ids.append(ann.id)
    descs = [a.description for a, _ in joined]
    norm = [" ".join(words(d)) for d in descs]
    unchanged = sum(1 for (a, e) in joined
                    if " ".join(words(a.description)) == " ".join(words(e.base_description or "")))
    src_stats, oov, new_words = _against_source(descs, source_captions)
    n = len(joined)
    return CaptionQuality(
        num_annotations=len(anns), num_joined=n,
        failed_edits=sum(1 for k, e in eds.items() if k not in anns and e.failed),
        edits_without_annotation=sum(1 for k, e in eds.items() if k not in anns and not e.failed),
        annotations_without_edit=sum(1 for k in anns if k not in eds),
        share_names_all_attributes=names_all / n if n else None,
        share_names_replaced=replaced_named / with_replaced if with_replaced else (0.0 if n else None),
        unchanged_from_base=unchanged, duplicates=len(norm) - len(set(norm)), descriptions=text_stats(descs),
        source_captions=src_stats, words_outside_source_vocabulary=oov, new_words=new_words,
        missing_attribute_ids=missing_ids, replaced_still_named_ids=replaced_ids)


def _against_source(descs: list[str], source: list[str] | None) -> tuple[TextStats | None, float | None, list[str]]:
    if not source:
        return None, None, []
    vocab = {w for t in source for w in words(t)}
    tokens = [w for d in descs for w in words(d)]
    outside = Counter(w for w in tokens if w not in vocab)
    share = sum(outside.values()) / len(tokens) if tokens else None
    return text_stats(source), share, [w for w, _ in outside.most_common(20)]


def source_captions_for(edits: str | Path) -> list[str] | None:
    """Captions of the source datasets named by an edit manifest (None when none can be read)."""
    from dp_cli.data.loading import load_dataset

    roots = {row.source_dataset for row in read_edit_rows(edits, ())} - {None, ""}
    caps: list[str] = []
    for root in sorted(roots):
        try:
            ds = load_dataset(Path(root))
        except DataError:
            continue
        caps += [c for r in ds.records for c in r.captions]
    return caps or None

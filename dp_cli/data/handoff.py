"""The files one stage hands the next (docs/FORMATS.md): `dp edit`'s edits.jsonl rows and `dp annotate`'s
annotations.jsonl rows and failure-log rows, each with one reader and one writer (`to_json`).

A reader checks the type of every known field present, and that the fields its caller `require`s are
there and not empty; errors name file:line and the command that writes the file. Fields a row does not
know are kept in `extra` and written back, so files of older and newer dp versions load and survive a
rewrite (the edit manifest's merge)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

from dp_cli.errors import DataError
from dp_cli.fsutil import parse_jsonl

EDITS_HINT = "edits.jsonl is written by `dp edit`; see docs/FORMATS.md"
ANNOTATIONS_HINT = "annotations.jsonl is written by `dp annotate`; see docs/FORMATS.md"
FAILURES_HINT = "the failure log (<output stem>.failed.jsonl) is written by `dp annotate`; see docs/FORMATS.md"
PASSED, FAILED = "passed", "failed"

# What a known field may hold (None always means absent): kind -> (accepted types, words for errors).
_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "id": ((str, int), "a string"), "text": ((str,), "a string"), "int": ((int,), "an integer"),
    "bool": ((bool,), "true or false"), "dict": ((dict,), "an object"), "list": ((list,), "a list")}


def _typed(kind: str, value: Any, name: str, where: str, hint: str) -> Any:
    """`value` as `kind`, None when absent; a DataError naming `where` and the field otherwise."""
    types, words = _KINDS[kind]
    if value is None:
        return None
    if isinstance(value, types) and (kind == "bool" or not isinstance(value, bool)):
        return str(value) if kind == "id" else value
    raise DataError(f"{where}: field {name!r} must be {words} (got {value!r:.60})", hint=hint)


def _split(obj: dict[str, Any], spec: dict[str, str], where: str, hint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(known fields typed by `spec` (json key -> kind), the other keys as they are)."""
    known = {key: _typed(kind, obj.get(key), key, where, hint) for key, kind in spec.items()}
    return known, {k: v for k, v in obj.items() if k not in spec}


def _blank(value: Any) -> bool:
    return not value.strip() if isinstance(value, str) else value is None or value == []


def _check_required(obj: dict[str, Any], require: Iterable[str], where: str, hint: str) -> None:
    """Each key of `require` present and not empty (a blank string, an empty list) in the JSON object `obj`."""
    missing = [k for k in require if obj.get(k) is None]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}", hint=hint)
    for key in require:
        if _blank(obj[key]):
            rid = f" for id {obj['id']!r}" if isinstance(obj.get("id"), (str, int)) else ""
            raise DataError(f"{where}: empty {key}{rid}", hint=hint)


def _json(spec: dict[str, str], values: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The known fields that are set, in the order written, then the unknown ones."""
    return {**{k: values[k] for k in spec if values[k] is not None}, **extra}


def _lines(path: Path | str, hint: str, partial_tail: bool = False) -> list[bytes]:
    """The lines of a file; with `partial_tail`, a last line without its newline (a process that died
    mid-append) is left out."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found", hint=hint)
    with open(path, "rb") as fh:
        lines = fh.readlines()
    return lines[:-1] if partial_tail and lines and not lines[-1].endswith(b"\n") else lines


def _objects(lines: Iterable[bytes | str], name: str) -> list[tuple[str, dict[str, Any]]]:
    """(name:line, object) per line, every line parsed before any field is checked: a malformed line is
    reported first."""
    return [(f"{name}:{lineno}", obj) for lineno, obj in parse_jsonl(lines, name)]


# ----------------------------------------------------------------------------- edits.jsonl


REFERENCE_FIELDS = {"type": "text", "label": "text", "image": "text", "mask": "text"}
REFERENCE_TAIL = {"replaced": "text", "added_phrase": "bool", "preparation": "dict"}  # written by `dp edit`


@dataclass
class EditReference:
    """One entry of an edit's `reference_attribute_list`: the catalog item put in, and how."""

    label: str
    type: str | None = None
    image: str | None = None  # absolute path of the catalog picture
    mask: str | None = None
    replaced: str | None = None  # the phrase of the base description it replaced
    added_phrase: bool | None = None  # whether the label was added to the prompt rather than swapped in
    preparation: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # toy truth (color, pattern, pattern_color) and unknown keys
    bare: bool = False  # given as a plain label (the published annotate input), written back as one

    @classmethod
    def from_json(cls, value: Any, where: str) -> EditReference:
        """A label string or an object with `label`."""
        if isinstance(value, str) and value.strip():
            return cls(value.strip(), bare=True)
        if not (isinstance(value, dict) and isinstance(value.get("label"), str) and value["label"].strip()):
            raise DataError(f"{where} must be a label or an object with 'label' (got {value!r:.80})", hint=EDITS_HINT)
        known, extra = _split(value, {**REFERENCE_FIELDS, **REFERENCE_TAIL}, where, EDITS_HINT)
        return cls(**{**known, "label": known["label"].strip()}, extra=extra)

    def to_json(self) -> str | dict[str, Any]:
        if self.bare:
            return self.label
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        # `dp edit` writes `replaced` with `added_phrase`, null when the label was added rather than swapped in
        tail = {k: values[k] for k in REFERENCE_TAIL
                if values[k] is not None or (k == "replaced" and self.added_phrase is not None)}
        return {**_json(REFERENCE_FIELDS, values, self.extra), **tail}


EDIT_FIELDS = {  # json key -> kind, in the order `dp edit` writes them
    "id": "id", "image": "text", "mask": "text", "source_id": "id", "source_image": "text",
    "source_dataset": "text", "person_id": "int", "variant": "id", "split": "text", "base_description": "text",
    "prompt": "text", "reference_attribute_list": "list", "seed": "int", "verify": "dict", "status": "text",
    "candidates": "list", "model": "text", "settings": "dict"}


@dataclass
class EditRow:
    """One line of edits.jsonl: an edited image, what it was made from, and the verifier's verdict.

    Every field may be absent (None) in a file; `read_edit_rows(require=...)` says which must be there."""

    id: str | None = None
    image: str | None = None  # relative to the manifest's folder
    mask: str | None = None  # the edit mask used, relative to the manifest's folder
    source_id: str | None = None
    source_image: str | None = None  # absolute
    source_dataset: str | None = None  # absolute root of the source dataset
    person_id: int | None = None  # the source person
    variant: str | None = None  # the new identity
    split: str | None = None
    base_description: str | None = None
    prompt: str | None = None
    reference_attribute_list: list[EditReference] | None = None
    seed: int | None = None  # the kept candidate's
    verify: dict[str, Any] | None = None  # the verifier's record (dp_cli.edit.verify.Verdict.record)
    status: str | None = None  # "passed" | "failed"; absent in rows written before the verifier
    candidates: list[dict[str, Any]] | None = None  # every seed tried: {"seed", "score"}
    model: str | None = None
    settings: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know, kept
    where: str = field(default="", compare=False)  # file:line it was read from (not written)

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str, require: Iterable[str] = ()) -> EditRow:
        _check_required(obj, require, where, EDITS_HINT)
        known, extra = _split(obj, EDIT_FIELDS, where, EDITS_HINT)
        refs = known["reference_attribute_list"]
        if refs is not None:
            known["reference_attribute_list"] = [EditReference.from_json(r, f"{where}: reference_attribute_list[{k}]")
                                                 for k, r in enumerate(refs)]
        return cls(**known, extra=extra, where=where)

    def to_json(self) -> dict[str, Any]:
        """The line of edits.jsonl (docs/FORMATS.md); unset fields are left out."""
        values = {k: getattr(self, k) for k in EDIT_FIELDS}
        if self.reference_attribute_list is not None:
            values["reference_attribute_list"] = [r.to_json() for r in self.reference_attribute_list]
        return _json(EDIT_FIELDS, values, self.extra)

    @property
    def references(self) -> list[EditReference]:
        return self.reference_attribute_list or []

    @property
    def verdict(self) -> str | None:
        """'passed' | 'failed', or None for a row written before the verifier."""
        return self.status if self.status in (PASSED, FAILED) else None

    @property
    def failed(self) -> bool:
        """The verifier failed this edit: left out of exports and not annotated by default."""
        return self.status == FAILED

    @property
    def score(self) -> float | None:
        """The verifier's score, when there is one."""
        score = (self.verify or {}).get("score")
        return score if isinstance(score, (int, float)) and not isinstance(score, bool) else None

    @property
    def candidate_seeds(self) -> set[int]:
        """Every seed tried for this edit, the kept one included."""
        tried = {c.get("seed") for c in self.candidates or [] if isinstance(c, dict)}
        return tried | ({self.seed} if self.seed is not None else set())


def parse_edit_rows(lines: Iterable[bytes | str], name: str, require: Iterable[str] = ("id",)) -> Iterator[EditRow]:
    """Rows of an edits.jsonl given as lines (a file object, stdin); `name` names it in errors."""
    require = tuple(require)
    for where, obj in _objects(lines, name):
        yield EditRow.from_json(obj, where, require)


def read_edit_rows(path: Path | str, require: Iterable[str] = ("id",), *,
                   partial_tail: bool = False) -> Iterator[EditRow]:
    """Rows of an edits.jsonl; `partial_tail` leaves out a last line cut by a crash (a manifest being written)."""
    return parse_edit_rows(_lines(path, EDITS_HINT, partial_tail), str(path), require)


# ----------------------------------------------------------------------------- annotations.jsonl


ANNOTATION_FIELDS = {"key": "text", "id": "id", "description": "text", "attributes": "list", "model": "text",
                     "prompt_version": "text", "usage": "dict"}


class _FlatRow:
    """A row of flat typed fields (`FIELDS`: json key -> kind, read and written in that order), `extra` and
    `where`: its one reader and writer."""

    FIELDS: ClassVar[dict[str, str]]
    HINT: ClassVar[str]

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str, require: Iterable[str] = ()):
        _check_required(obj, require, where, cls.HINT)
        known, extra = _split(obj, cls.FIELDS, where, cls.HINT)
        return cls(**known, extra=extra, where=where)

    def to_json(self) -> dict[str, Any]:
        return _json(self.FIELDS, {k: getattr(self, k) for k in self.FIELDS}, self.extra)

    @classmethod
    def read(cls, path: Path | str, require: Iterable[str]) -> Iterator:
        require = tuple(require)
        for where, obj in _objects(_lines(path, cls.HINT), str(path)):
            yield cls.from_json(obj, where, require)


@dataclass
class AnnotationRow(_FlatRow):
    """One line of annotations.jsonl: the new description of one edit."""

    key: str | None = None  # hash of (model, prompt, record, parameters): what makes a rerun skip it
    id: str | None = None  # the edit's id
    description: str | None = None
    attributes: list[str] | None = None  # the labels asked for
    model: str | None = None
    prompt_version: str | None = None
    usage: dict[str, Any] | None = None  # {"prompt_tokens", "completion_tokens"}
    extra: dict[str, Any] = field(default_factory=dict)
    where: str = field(default="", compare=False)
    FIELDS: ClassVar[dict[str, str]] = ANNOTATION_FIELDS
    HINT: ClassVar[str] = ANNOTATIONS_HINT


def read_annotation_rows(path: Path | str, require: Iterable[str] = ("id", "description")) -> Iterator[AnnotationRow]:
    """Rows of an annotations.jsonl (`dp annotate`'s output)."""
    return AnnotationRow.read(path, require)


def read_descriptions(path: Path | str) -> dict[str, str]:
    """Edit id -> new description (stripped) of an annotations.jsonl."""
    return {str(row.id): row.description.strip() for row in read_annotation_rows(path)}


# ----------------------------------------------------------------------------- <output stem>.failed.jsonl


FAILURE_FIELDS = {"key": "text", "id": "id", "reason": "text", "detail": "text", "attempts": "int",
                  "last_answer": "text"}


@dataclass
class FailureRow(_FlatRow):
    """One line of `dp annotate`'s failure log: a record that no answer passed after its attempts."""

    key: str | None = None  # the same key as its annotations.jsonl line would have had
    id: str | None = None  # the edit's id
    reason: str | None = None  # why the last answer was rejected, or the request failed (a short word)
    detail: str | None = None  # the reason in a sentence
    attempts: int | None = None  # how many times it was asked
    last_answer: str | None = None  # the last answer rejected, if the model answered at all
    extra: dict[str, Any] = field(default_factory=dict)
    where: str = field(default="", compare=False)
    FIELDS: ClassVar[dict[str, str]] = FAILURE_FIELDS
    HINT: ClassVar[str] = FAILURES_HINT


def read_failure_rows(path: Path | str, require: Iterable[str] = ("key",)) -> Iterator[FailureRow]:
    """Rows of a `dp annotate` failure log."""
    return FailureRow.read(path, require)

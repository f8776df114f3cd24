"""Property tests: random JSON shapes and random path strings fed to every reader of user files give a
one-line DpError (or a valid result), never another exception, and never touch anything outside."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dp_cli.errors import DpError

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                    max_leaves=12)
KEYS = ("id", "image", "person_id", "split", "captions", "parsing", "type", "label", "mask", "base_description",
        "reference_attribute_list", "source_id", "variant", "status", "description")
PATHS = st.one_of(st.text(max_size=30), st.sampled_from(["../../etc/passwd", "/etc/passwd", "a/../../b.png", "",
                                                          "C:/x.png", "~/x", "x\x00y.png", "images/../../z.png"]))
RECORDS = st.fixed_dictionaries({}, optional={k: st.one_of(JSON, PATHS) for k in KEYS})
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write(folder: Path, name: str, rows: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _one_line(exc: DpError) -> None:
    assert "\n" not in str(exc) and "Traceback" not in str(exc)


def _reads_or_says_why(*calls) -> None:
    """Each reader either accepts the input or raises one DpError of one line; nothing else escapes."""
    for call in calls:
        try:
            call()
        except DpError as exc:
            _one_line(exc)


@FAST
@given(rows=st.lists(RECORDS, min_size=1, max_size=3))
def test_native_dataset_reader(tmp_path_factory, rows):
    from dp_cli.data.formats.native import load_native

    root = tmp_path_factory.mktemp("ds")
    _write(root, "annotations.jsonl", rows)
    _reads_or_says_why(lambda: load_native(root))


@FAST
@given(rows=st.lists(RECORDS, min_size=1, max_size=3))
def test_catalog_reader(tmp_path_factory, rows):
    from dp_cli.edit.plan import load_catalog

    root = tmp_path_factory.mktemp("cat")
    _write(root, "catalog.jsonl", rows)
    try:
        for item in load_catalog(root):
            assert root.resolve() in item.image.resolve().parents  # nothing outside the catalog folder
    except DpError as exc:
        _one_line(exc)


@FAST
@given(rows=st.lists(RECORDS, min_size=1, max_size=3))
def test_annotate_input_reader(tmp_path_factory, rows):
    from dp_cli.annotate.records import read_input

    path = _write(tmp_path_factory.mktemp("ann"), "in.jsonl", rows)
    _reads_or_says_why(lambda: read_input(path))


@FAST
@given(rows=st.lists(RECORDS, min_size=1, max_size=3))
def test_edit_manifest_readers(tmp_path_factory, rows):
    from dp_cli.data.formats.native import load_native
    from dp_cli.eval.edits import read_manifest
    from dp_cli.data.handoff import read_descriptions
    from dp_cli.export.generated import load_generated

    folder = tmp_path_factory.mktemp("edits")
    edits = _write(folder, "edits.jsonl", rows)
    notes = _write(folder, "annotations.jsonl", rows)
    world = tmp_path_factory.mktemp("w")
    _write(world, "annotations.jsonl", [{"id": "a", "image": "a.png", "person_id": 0, "split": "train",
                                        "captions": ["a person"]}])
    _reads_or_says_why(lambda: read_manifest(edits), lambda: read_descriptions(notes),
                       lambda: load_generated(edits, load_native(world), notes, use_base_description=True))


@FAST
@given(rel=PATHS)
def test_dataset_paths_never_leave_the_folder(tmp_path_factory, rel):
    from dp_cli.data.dataset import resolve_inside, safe_relpath

    root = tmp_path_factory.mktemp("root")
    try:
        path = resolve_inside(root, safe_relpath(rel, "record"), "record")
    except (DpError, ValueError) as exc:  # ValueError: a NUL byte, which no OS path may hold
        if isinstance(exc, DpError):
            _one_line(exc)
        return
    assert root.resolve() in Path(path).resolve().parents or Path(path).resolve() == root.resolve()

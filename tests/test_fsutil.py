"""dp_cli/fsutil.py: the output guard, the one JSONL reader (any bytes -> objects or one DataError naming
the line), the atomic JSONL rewrite, and full-disk errors that name the file."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dp_cli.errors import DataError, DpError, UsageError
from dp_cli.fsutil import (JsonlAppender, check_outputs, parse_jsonl, read_jsonl, rewrite_jsonl,
                           write_text_atomic)


# ---------------------------------------------------------------------------------------- check_outputs
def test_an_output_may_not_be_contain_or_sit_inside_an_input(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "a.jsonl").write_text("{}\n")
    with pytest.raises(UsageError, match=rf"^--out {data} is the same as --dataset {data} \("):
        check_outputs({"--out": data}, {"--dataset": data})
    with pytest.raises(UsageError, match=rf"--out {tmp_path} contains --dataset {data}"):
        check_outputs({"--out": tmp_path}, {"--dataset": data})
    with pytest.raises(UsageError, match=rf"--out {data}/images/x is inside --dataset {data}"):
        check_outputs({"--out": data / "images" / "x"}, {"--dataset": data})
    check_outputs({"--out": tmp_path / "out"}, {"--dataset": data, "--edits": None, "--input": "-"})


def test_symlinks_and_hard_links_to_an_input_are_the_input(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    (tmp_path / "alias.jsonl").symlink_to(src)
    os.link(src, tmp_path / "hard.jsonl")
    for alias in ("alias.jsonl", "hard.jsonl"):
        with pytest.raises(UsageError, match="is the same as --input"):
            check_outputs({"--output": tmp_path / alias}, {"--input": src})


def test_two_outputs_may_not_be_one_file(tmp_path):
    with pytest.raises(UsageError, match=rf"--output and --failures are the same file {tmp_path}/o.jsonl"):
        check_outputs({"--output": tmp_path / "o.jsonl", "--failures": tmp_path / "x" / ".." / "o.jsonl"})
    check_outputs({"--output": "-", "--failures": tmp_path / "f.jsonl"})


def test_a_folder_is_replaced_only_when_dp_made_it_and_overwrite_is_given(tmp_path):
    out = tmp_path / "out"
    check_outputs({"--out": out}, marker="made.json")  # new
    out.mkdir()
    check_outputs({"--out": out}, marker="made.json")  # empty
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(DataError, match="folder is not empty .*pass --overwrite"):
        check_outputs({"--out": out}, marker="made.json")
    with pytest.raises(DataError, match=r"holds files dp did not write \(thesis.tex; no made.json\)"):
        check_outputs({"--out": out}, marker="made.json", overwrite=True)
    (out / "made.json").write_text("{}")
    check_outputs({"--out": out}, marker="made.json", overwrite=True)
    with pytest.raises(DataError, match="exists and is not a folder"):
        check_outputs({"--out": out / "thesis.tex"}, marker="made.json", overwrite=True)


def test_the_calls_recommended_for_dp_edit(tmp_path):
    """The guard as dp edit would call it (issue 15, item 6): the toy world keeps its catalog inside the dataset."""
    world = tmp_path / "world"
    (world / "catalog").mkdir(parents=True)
    for out in (world, world / "edits"):
        with pytest.raises(UsageError, match="--output-dir .* --dataset"):
            check_outputs({"--output-dir": out}, {"--dataset": world, "--catalog": world / "catalog"})
    check_outputs({"--output-dir": tmp_path / "edit-out"}, {"--dataset": world, "--catalog": world / "catalog"})
    image = tmp_path / "x.png"
    image.write_bytes(b"png")
    with pytest.raises(UsageError, match=rf"--out {image} is the same as --image {image}"):
        check_outputs({"--out": image}, {"--image": image, "--parsing": tmp_path / "m.png"})


def test_a_device_is_no_output(tmp_path):
    with pytest.raises(DataError, match="/dev/null: exists and is not a regular file or folder"):
        check_outputs({"--output": "/dev/null"})


# ---------------------------------------------------------------------------------------- the JSONL reader
def test_not_utf8_names_the_line_and_column(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"b": "caf\xe9"}\n')
    with pytest.raises(DataError, match=rf"^{path}:3: not UTF-8 text \(byte 0xe9 at column 11\) "
                                        r"\(save the file as UTF-8 text\)$"):
        list(read_jsonl(path))


def test_a_text_stream_that_is_not_utf8_is_a_data_error():
    import io

    stream = io.TextIOWrapper(io.BytesIO(b'{"a": 1}\n{"b": "\xff"}\n'), encoding="utf-8")
    with pytest.raises(DataError, match=r"^<stdin>: not UTF-8 text \(invalid start byte\)"):
        list(parse_jsonl(stream, "<stdin>"))


def test_lines_split_on_newlines_only():
    rows = list(parse_jsonl([b'{"a": "x\xe2\x80\xa8y"}\n', b'{"b": 2}\r\n'], "f"))  # U+2028 inside a string
    assert rows == [(1, {"a": "x\u2028y"}), (2, {"b": 2})]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300),
                      st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"', b":", b",", b"\n", b"1", b"\xe9",
                                                b"\xff", b"\x00", b"null", b'"k"', b"\\u00e9", b"9" * 50]),
                               max_size=80).map(b"".join)))
def test_any_bytes_give_objects_or_one_data_error(tmp_path, data):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    try:
        rows = list(read_jsonl(path))
    except DataError as exc:
        assert str(exc).startswith(f"{path}:") and "\n" not in str(exc)
    else:
        assert all(isinstance(obj, dict) for _, obj in rows)


def test_huge_numbers_and_deep_nesting_are_data_errors(tmp_path):
    for line in (b'{"a": ' + b"1" * 5000 + b"}\n", b"[" * 100_000 + b"\n"):
        (tmp_path / "x.jsonl").write_bytes(line)
        with pytest.raises(DpError, match=r"x.jsonl:1: malformed JSON"):
            list(read_jsonl(tmp_path / "x.jsonl"))


# ---------------------------------------------------------------------------------------- rewrite_jsonl
def test_rewrite_keeps_the_chosen_rows_and_cuts_a_partial_tail(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo')
    assert rewrite_jsonl(path, lambda row: row["step"] <= 3) == 2
    assert [row["step"] for _, row in read_jsonl(path)] == [1, 2, 3]
    assert rewrite_jsonl(tmp_path / "missing.jsonl", lambda row: False) == 0
    assert not (tmp_path / "missing.jsonl").exists()


# ---------------------------------------------------------------------------------------- a full disk
def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    from pathlib import Path

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "out.json"
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError) as info:
        write_text_atomic(target, "x")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_a_full_disk_while_appending_names_the_file(tmp_path, monkeypatch):
    log = JsonlAppender(tmp_path / "log.jsonl")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        log.append({"step": 1})
    log.close()
    assert info.value.filename == str(tmp_path / "log.jsonl")


# ---------------------------------------------------------------------------------------- staging_dir
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_staging_dir_gets_the_modes_the_umask_gives_a_new_folder(tmp_path, umask):
    from dp_cli.fsutil import staging_dir

    old = os.umask(umask)
    try:
        made = staging_dir(tmp_path, prefix=".out.tmp-")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(old)
    assert made.parent == tmp_path and made.name.startswith(".out.tmp-") and not any(made.iterdir())
    assert made.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_killed_runs_temporary_files_and_staging_folders_are_removed_by_the_next_run(tmp_path):
    """SIGKILL leaves what atomic_path and staging_dir made: staging_dir sweeps its own name's (export, toy),
    remove_stale_temps the temporary files (edit, segment)."""
    import tempfile

    from dp_cli.fsutil import remove_stale_temps, staging_dir

    fd, _ = tempfile.mkstemp(prefix=".p0.png.", suffix=".tmp.png", dir=tmp_path)
    os.close(fd)
    old_export = staging_dir(tmp_path, prefix=".CUHK-PEDES.tmp-")
    (old_export / "imgs").mkdir()
    old_world = staging_dir(tmp_path, prefix=".world.", suffix=".tmp")
    for name in (".hidden", ".notes.tmp", "keep.tmp", "p0.png", ".CUHK-PEDES.tmp-mine"):
        (tmp_path / name).write_text("mine")
    new_export = staging_dir(tmp_path, prefix=".CUHK-PEDES.tmp-")
    assert not old_export.exists() and new_export.is_dir() and old_world.is_dir()
    new_export.rmdir()
    new_world = staging_dir(tmp_path, prefix=".world.", suffix=".tmp")
    assert not old_world.exists()
    new_world.rmdir()
    assert remove_stale_temps(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".CUHK-PEDES.tmp-mine", ".hidden", ".notes.tmp",
                                                          "keep.tmp", "p0.png"]


def test_an_interrupt_right_after_the_temporary_file_is_made_removes_it(tmp_path, monkeypatch):
    from dp_cli import fsutil

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil.os, "chmod", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with fsutil.atomic_path(tmp_path / "a.png"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_replace_dir_swaps_whole_and_puts_the_old_back_when_stopped(tmp_path, monkeypatch):
    from dp_cli import fsutil

    target, new = tmp_path / "model", tmp_path / ".model.tmp"
    target.mkdir()
    (target / "w").write_text("old")
    new.mkdir()
    (new / "w").write_text("new")
    real = os.replace

    def stopped(src, dst):
        if Path(src) == new:
            raise KeyboardInterrupt  # Ctrl-C / SIGTERM between moving the old one aside and the rename
        return real(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        fsutil.replace_dir(new, target)
    assert (target / "w").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [".model.tmp", "model"]
    monkeypatch.setattr(fsutil.os, "replace", real)
    (tmp_path / ".model.old-k3j_x9a2").mkdir()  # what a swap killed outright during its last rmtree left
    (tmp_path / ".model.old-notmine").mkdir()  # not a name replace_dir makes: kept
    fsutil.replace_dir(new, target)
    assert (target / "w").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.old-notmine", "model"]

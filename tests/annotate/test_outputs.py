"""What annotate writes: never over its inputs or its own other log, never the API key, one line naming the
file for bad bytes or a full disk, and a word when there was nothing to annotate (issue 15)."""

from __future__ import annotations

import errno
import json
import os

from conftest import SECRET, invoke, make_rows, read_lines, write_rows
from fake_openai import FakeOpenAI


def _error_line(res, code: int) -> str:
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def test_failures_equal_to_output_is_refused_and_retry_failed_keeps_the_annotations(tmp_path):
    src, out = write_rows(tmp_path / "in.jsonl", make_rows(3)), tmp_path / "out.jsonl"
    assert invoke(["annotate", "-i", src, "-o", out, "--backend", "offline"]).exit_code == 0
    before = out.read_bytes()
    res = invoke(["annotate", "-i", src, "-o", out, "--failures", out, "--backend", "offline", "--retry-failed"])
    line = _error_line(res, 2)
    assert f"--output and --failures are the same file {out}" in line
    assert out.read_bytes() == before and len(read_lines(out)) == 3


def test_an_output_may_not_be_the_input(tmp_path):
    src = write_rows(tmp_path / "in.jsonl", make_rows(2))
    before = src.read_bytes()
    for args in (["-o", src], ["-o", tmp_path / "out.jsonl", "--failures", src]):
        line = _error_line(invoke(["annotate", "-i", src, *args, "--backend", "offline"]), 2)
        assert f"is the same as --input {src}" in line
        assert src.read_bytes() == before
    assert not (tmp_path / "out.jsonl").exists()


def test_an_input_that_is_not_utf8_is_one_line_naming_file_and_line(tmp_path):
    src = tmp_path / "l.jsonl"
    src.write_bytes(b'{"id":"a","base_description":"caf\xe9","reference_attribute_list":["blue coat"]}\n')
    line = _error_line(invoke(["annotate", "-i", src, "-o", tmp_path / "o.jsonl", "--backend", "offline"]), 1)
    assert line == f"error: {src}:1: not UTF-8 text (byte 0xe9 at column 34) (save the file as UTF-8 text)"
    assert not (tmp_path / "o.jsonl").exists()
    res = invoke(["annotate", "-i", "-", "-o", tmp_path / "o.jsonl", "--backend", "offline"],
                 input=(json.dumps(make_rows(1)[0]) + "\n").encode() + src.read_bytes())
    assert _error_line(res, 1).startswith("error: <stdin>:2: not UTF-8 text (byte 0xe9")


def test_an_empty_input_says_so(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_text("\n")
    res = invoke(["--json", "annotate", "-i", src, "-o", tmp_path / "o.jsonl", "--backend", "offline"])
    assert res.exit_code == 0, res.output
    assert f"warning: {src} holds no records: nothing was annotated" in res.stderr
    assert json.loads(res.stdout.splitlines()[-1])["selected"] == 0
    write_rows(src, make_rows(2))
    res = invoke(["annotate", "-i", src, "-o", tmp_path / "o.jsonl", "--backend", "offline", "--text-start", "5"])
    assert res.exit_code == 0 and "select none of the 2" in res.stderr, res.output


def test_a_full_disk_names_the_output(tmp_path, monkeypatch):
    src, out = write_rows(tmp_path / "in.jsonl", make_rows(2)), tmp_path / "out.jsonl"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    line = _error_line(invoke(["annotate", "-i", src, "-o", out, "--backend", "offline"]), 1)
    assert line == f"error: {out}: cannot write (No space left on device)"


def test_a_key_echoed_in_good_answers_is_never_written_or_printed(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    src = write_rows(tmp_path / "in.jsonl", make_rows(4, {0: "FAULTLEAKKEYx9", 1: "FAULTLEAKKEYx9",
                                                           2: "FAULTREFUSEx9"}))
    with FakeOpenAI() as srv:
        args = ["annotate", "-i", src, "--base-url", srv.url, "--attempts", "1", "--concurrency", "2"]
        res = invoke(["--json", "--verbose", *args, "-o", tmp_path / "out.jsonl"])
        piped = invoke([*args, "-o", "-", "--failures", tmp_path / "piped.failed.jsonl"])
    assert res.exit_code == 0 and piped.exit_code == 0, res.output + piped.output
    done = {r["id"]: r["description"] for r in read_lines(tmp_path / "out.jsonl")}
    assert "Served for key [redacted]." in done["p0__v0"] and "Served for key [redacted]." in done["p1__v0"]
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    assert SECRET not in written and SECRET not in res.output and SECRET not in piped.output
    assert "Served for key [redacted]." in piped.stdout


def test_a_short_dummy_key_changes_nothing_written_and_a_rerun_still_skips(tmp_path, monkeypatch):
    """Keys like "a" or "1" (local servers take any) are not secrets: replacing them mangled descriptions, field
    names and the line keys, so a rerun asked every record again."""
    src = write_rows(tmp_path / "in.jsonl", make_rows(3))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert invoke(["annotate", "-i", src, "-o", tmp_path / "plain.jsonl", "--backend", "offline"]).exit_code == 0
    for key in ("a", "1", "EMPTY"):
        monkeypatch.setenv("OPENAI_API_KEY", key)
        out = tmp_path / f"{key}.jsonl"
        first = invoke(["annotate", "-i", src, "-o", out, "--backend", "offline"])
        assert first.exit_code == 0 and "[redacted]" not in first.output
        assert out.read_bytes() == (tmp_path / "plain.jsonl").read_bytes()
        again = invoke(["annotate", "-i", src, "-o", out, "--backend", "offline"])
        assert again.exit_code == 0 and len(read_lines(out)) == 3


def test_the_key_is_removed_from_values_also_where_json_escapes_it(tmp_path):
    """Scrubbing the dumped line missed a key with a quote or backslash (JSON writes it escaped)."""
    import asyncio

    from dp_cli.annotate.backends import redact
    from dp_cli.annotate.sink import _Log

    secret = 'k3y"with\\quotes'
    log = _Log(tmp_path / "log.jsonl", lambda text: redact(text, secret))

    async def write():
        await log.append({"key": "abc", "id": "e0", "description": f"echo {secret}.", "x": [f"{secret}"]})

    asyncio.run(write())
    log.close()
    text = (tmp_path / "log.jsonl").read_text()
    assert json.dumps(secret)[1:-1] not in text and secret not in text
    assert json.loads(text) == {"key": "abc", "id": "e0", "description": "echo [redacted].", "x": ["[redacted]"]}

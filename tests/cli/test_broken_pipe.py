"""`dp ... | head` ends quietly when the reader goes away, like standard tools: no error line, status 0 or
141 (SIGPIPE), and what was already written stays."""

from __future__ import annotations

import json
import subprocess
import sys


def _edits(path, n: int) -> None:
    rows = ({"id": f"e{i}", "base_description": "A man in a red shirt and blue jeans walks with a black bag.",
             "reference_attribute_list": ["gold hair", "white sandals"]} for i in range(n))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _pipe(shell: str, cwd, env) -> tuple[int, str, str]:
    """Run `shell` under bash; returns (dp's own exit status, stdout of the pipeline, stderr)."""
    run = subprocess.run(["bash", "-c", shell + '; echo "status=${PIPESTATUS[0]}" >&2'], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    *err, last = run.stderr.rstrip("\n").split("\n")
    assert last.startswith("status="), run.stderr
    return int(last.split("=")[1]), run.stdout, "\n".join(err)


def test_annotate_to_stdout_into_head_ends_quietly(tmp_path, subprocess_env):
    _edits(tmp_path / "in.jsonl", 3000)
    status, out, err = _pipe(f'"{sys.executable}" -m dp_cli annotate -i in.jsonl -o - --backend offline | head -1',
                             tmp_path, subprocess_env())
    assert status in (0, 141) and err == "", (status, err)
    assert json.loads(out)["key"]  # the line head read is whole
    assert not (tmp_path / "annotations.failed.jsonl").exists()


def test_annotate_from_stdin_to_stdout_into_head(tmp_path, subprocess_env):
    _edits(tmp_path / "in.jsonl", 3000)
    status, out, err = _pipe(f'cat in.jsonl | "{sys.executable}" -m dp_cli -q annotate -i - -o - --backend offline '
                             f'| head -3', tmp_path, subprocess_env())
    assert status in (0, 141) and "error" not in err and "Traceback" not in err, (status, err)
    assert len(out.splitlines()) == 3


def test_help_into_a_closed_pipe_ends_quietly(tmp_path, subprocess_env):
    status, out, err = _pipe(f'"{sys.executable}" -m dp_cli train --help | head -c 10', tmp_path,
                             subprocess_env(COLUMNS="80"))
    assert status in (0, 141) and err == "", (status, err)

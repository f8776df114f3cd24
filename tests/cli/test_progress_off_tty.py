"""Without a terminal on stderr (a log file, a pipe, CI) there is no progress bar: an error stays the
one line on stderr, and a run prints only its messages and summary."""

from __future__ import annotations


def test_error_inside_a_progress_bar_is_the_only_line(dp, tmp_path):
    result = dp("annotate", "-i", tmp_path / "nope.jsonl", "-o", tmp_path / "out.jsonl", "--backend", "offline")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope.jsonl" in lines[0], result.stderr


def test_no_bar_in_a_log(dp, tmp_path):
    result = dp("toy", "--out", tmp_path / "w", "--persons", "2", "--height", "32", "--width", "16",
                "--catalog-per-type", "0")
    assert result.exit_code == 0, result.output
    assert "toy world" not in result.stderr and "━" not in result.stderr
    assert "dp toy" in result.stderr  # the summary is still there

"""The command surface: --help, the documented TOML fragment, usage errors, the offline backend."""

import re
import tomllib

from conftest import REPO, invoke, make_rows, read_lines, write_rows

from dp_cli import docs_build
from dp_cli.annotate.config import AnnotateConfig
from dp_cli.config import ProjectFile, resolve_section


def test_help_runs():
    res = invoke(["annotate", "--help"])
    assert res.exit_code == 0 and "--slice-step" in res.output and "OPENAI_API_KEY" in res.output


def test_toml_fragment_loads_and_documents_every_key():
    text = docs_build.table_toml("annotate")
    documented = set(re.findall(r"^#? ?(\w+) = ", text, re.M))
    assert documented == set(AnnotateConfig.model_fields)
    cfg = resolve_section(AnnotateConfig, "annotate", ProjectFile(REPO / "dp.toml", tomllib.loads(text)))
    assert cfg == AnnotateConfig()  # the uncommented values are the defaults


def test_offline_backend_on_an_edit_manifest(tmp_path):
    write_rows(tmp_path / "edits.jsonl", make_rows(7))
    res = invoke(["annotate", "-i", str(tmp_path / "edits.jsonl"), "-o", str(tmp_path / "ann.jsonl"),
                  "--backend", "offline", "--text-start", "1", "--text-end", "-1", "--slice-step", "2"])
    assert res.exit_code == 0, res.output
    rows = read_lines(tmp_path / "ann.jsonl")
    assert sorted(r["id"] for r in rows) == [f"p{i}__v0" for i in range(1, 7)]
    assert rows[0]["description"].startswith("A man number") and "red jacket, blue jeans" in rows[0]["description"]
    assert set(rows[0]) == {"key", "id", "description", "attributes", "model", "prompt_version", "usage"}
    assert "slice 3/3" in res.output


def test_offline_backend_costs_nothing(tmp_path):
    import json

    write_rows(tmp_path / "edits.jsonl", make_rows(2))
    res = invoke(["--json", "annotate", "-i", str(tmp_path / "edits.jsonl"), "-o", str(tmp_path / "ann.jsonl"),
                  "--backend", "offline"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["done"] == 2 and summary["estimated_cost_usd"] == 0.0
    assert summary["failures"] is None  # nothing failed: no failure log was written, none is named
    assert not (tmp_path / "ann.failed.jsonl").exists()


def test_the_summary_names_the_failure_log_once_there_is_one(tmp_path):
    import json

    write_rows(tmp_path / "edits.jsonl", make_rows(2))
    (tmp_path / "ann.failed.jsonl").write_text("")  # an earlier run's log
    res = invoke(["--json", "annotate", "-i", str(tmp_path / "edits.jsonl"), "-o", str(tmp_path / "ann.jsonl"),
                  "--backend", "offline"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["failures"] == str(tmp_path / "ann.failed.jsonl")


def test_usage_errors(tmp_path):
    res = invoke(["annotate", "-o", str(tmp_path / "o.jsonl"), "--backend", "offline"])
    assert res.exit_code == 2 and "no input" in res.output
    res = invoke(["--json", "annotate", "-i", "x.jsonl", "-o", "-", "--backend", "offline"])
    assert res.exit_code == 2 and "--json" in res.output
    res = invoke(["annotate", "-i", "x", "-o", "y", "--backend", "claude"])
    assert res.exit_code == 2 and "backend" in res.output  # bad option values are usage errors
    res = invoke(["annotate", "-i", "x", "-o", "y", "--text-start", "5", "--text-end", "2"])
    assert res.exit_code == 2 and "text_end" in res.output


def test_missing_input_file_and_missing_key(tmp_path):
    res = invoke(["annotate", "-i", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl"), "--backend", "offline"])
    assert res.exit_code == 1 and "nope.jsonl" in res.output and "Traceback" not in res.output
    write_rows(tmp_path / "in.jsonl", make_rows(1))
    res = invoke(["annotate", "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1 and "OPENAI_API_KEY is not set" in res.output


def test_partial_last_line_is_repaired_and_redone(tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(3))
    out = tmp_path / "o.jsonl"
    assert invoke(["annotate", "-i", str(tmp_path / "in.jsonl"), "-o", str(out), "--backend", "offline"]).exit_code == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:25])  # a crash in the middle of the last line
    assert invoke(["annotate", "-i", str(tmp_path / "in.jsonl"), "-o", str(out), "--backend", "offline"]).exit_code == 0
    rows = read_lines(out)
    assert len(rows) == 3 and len({r["key"] for r in rows}) == 3


def test_edits_that_failed_verification_are_not_asked_unless_included(tmp_path):
    import json

    rows = make_rows(4)
    rows[1]["status"] = "failed"
    rows[2]["status"] = "passed"
    write_rows(tmp_path / "edits.jsonl", rows)
    args = ["--json", "annotate", "-i", str(tmp_path / "edits.jsonl"), "-o", str(tmp_path / "ann.jsonl"),
            "--backend", "offline"]
    res = invoke(args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["done"], summary["skipped_failed_edits"]) == (3, 1)
    assert rows[1]["id"] not in {r["id"] for r in read_lines(tmp_path / "ann.jsonl")}
    res = invoke(args + ["--include-failed-edits"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["done"] == 1  # only the failed one was left
    assert rows[1]["id"] in {r["id"] for r in read_lines(tmp_path / "ann.jsonl")}


def test_when_every_edit_failed_verification_the_output_is_empty_and_the_run_says_why(tmp_path):
    import json

    rows = make_rows(2)
    for row in rows:
        row["status"] = "failed"
    write_rows(tmp_path / "edits.jsonl", rows)
    out = tmp_path / "ann.jsonl"
    res = invoke(["--json", "annotate", "-i", str(tmp_path / "edits.jsonl"), "-o", str(out), "--backend", "offline"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["done"] == 0 and summary["skipped_failed_edits"] == 2
    assert any("all 2 edits failed" in note for note in summary["notes"])
    assert out.is_file() and out.read_text() == ""  # the next stage finds an (empty) annotations file
    assert not (tmp_path / "ann.failed.jsonl").exists()

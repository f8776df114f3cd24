"""dp annotate against a real HTTP server on 127.0.0.1 (tests/annotate/fake_openai.py)."""

import json
import re

from conftest import SECRET, invoke, make_rows, read_lines, write_rows
from fake_openai import FakeOpenAI

FAULTS = {1: "FAULT429x2", 2: "FAULT500x1", 3: "FAULTSLOWx1", 4: "FAULTMALFORMEDx1", 5: "FAULTREFUSEx9",
          6: "FAULTDROPx9", 7: "FAULTEMPTYx1", 8: "FAULTLENGTHx1", 9: "FAULTECHOx1", 10: "FAULTSLOWx9"}


def _args(srv, tmp_path, *extra):
    return ["--json", "annotate", "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"),
            "--base-url", srv.url, "--timeout", "0.4", "--max-retries", "1", "--attempts", "3", *extra]


def test_faults_end_done_or_failed_with_reason(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    write_rows(tmp_path / "in.jsonl", make_rows(14, FAULTS))
    res = invoke(_args(server, tmp_path))
    assert res.exit_code == 0, res.output
    done = read_lines(tmp_path / "out.jsonl")
    failed = {r["id"]: r for r in read_lines(tmp_path / "out.failed.jsonl")}
    assert sorted(failed) == ["p10__v0", "p5__v0", "p6__v0"]
    assert failed["p5__v0"]["reason"] == "refusal" and failed["p6__v0"]["reason"] == "missing_attribute"
    assert failed["p10__v0"]["reason"] == "timeout" and failed["p10__v0"]["attempts"] == 3
    assert len(done) == 11 and len({r["key"] for r in done}) == 11
    for row in done:
        assert "red jacket" in row["description"] and "blue jeans" in row["description"], row
        assert row["attributes"] == ["red jacket", "blue jeans"] and row["usage"]["completion_tokens"] > 0
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["done"] == 11 and summary["failed"] == 3 and summary["rate_limited"] >= 2
    for reason in ("empty", "truncated", "echoed_prompt", "refusal", "missing_attribute"):
        assert summary["rejections"].get(reason, 0) >= 1, reason
    assert summary["api_errors"].get("timeout", 0) >= 1  # no answer came back: not a rejected answer
    assert summary["requests"] == server.state.requests  # sent, timed out ones included
    assert summary["rejections"].get("malformed", 0) + summary["api_errors"].get("malformed", 0) >= 1
    assert "timeout" not in summary["rejections"] and "rate_limited" not in summary["rejections"]
    assert SECRET in server.state.auth_seen  # the key was sent ...
    everything = res.output + "".join(p.read_text() for p in tmp_path.iterdir())
    assert SECRET not in everything  # ... and never written anywhere


def test_rerun_skips_finished_and_retry_failed_asks_again(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(6, {2: "FAULTREFUSEx3"}))
    assert invoke(_args(server, tmp_path, "--attempts", "2")).exit_code == 0
    asked = server.state.requests
    res = invoke(_args(server, tmp_path))
    assert json.loads(res.stdout.splitlines()[-1])["skipped"] == 6 and server.state.requests == asked
    res = invoke(_args(server, tmp_path, "--retry-failed"))
    assert res.exit_code == 0, res.output
    assert len(read_lines(tmp_path / "out.jsonl")) == 6 and read_lines(tmp_path / "out.failed.jsonl") == []


def test_401_stops_at_once_without_leaking_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    write_rows(tmp_path / "in.jsonl", make_rows(40))
    with FakeOpenAI(api_key="sk-the-right-one") as srv:
        res = invoke(_args(srv, tmp_path, "--concurrency", "4", "--max-retries", "5"))
        assert res.exit_code == 1
        assert "401" in res.output and "OPENAI_API_KEY" in res.output and "Traceback" not in res.output
        assert srv.state.statuses == {401: srv.state.statuses[401]} and srv.state.statuses[401] <= 4  # no retries
    assert SECRET not in res.output
    assert not (tmp_path / "out.jsonl").exists() or read_lines(tmp_path / "out.jsonl") == []


def test_unknown_model_is_404_and_stops(tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(5))
    with FakeOpenAI(models={"gpt-4o-mini"}) as srv:
        res = invoke(_args(srv, tmp_path, "--model", "no-such-model"))
    assert res.exit_code == 1 and "404" in res.output and "no-such-model" in res.output


def test_in_flight_is_bounded_and_follows_rate_limit_headers(tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(60))
    with FakeOpenAI(latency=0.03) as srv:
        assert invoke(_args(srv, tmp_path, "--concurrency", "6")).exit_code == 0
        assert srv.state.max_in_flight == 6
    (tmp_path / "out.jsonl").unlink()
    with FakeOpenAI(latency=0.03, remaining_requests=2) as srv:
        assert invoke(_args(srv, tmp_path, "--concurrency", "12")).exit_code == 0
        assert len(read_lines(tmp_path / "out.jsonl")) == 60
        # the first wave goes out at 12; once answers say "2 left", the limiter keeps to that
        assert max(srv.state.arrivals[:12]) > 2 and max(srv.state.arrivals[24:]) <= 2


def test_structured_output(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(3))
    assert invoke(_args(server, tmp_path, "--structured")).exit_code == 0
    rows = read_lines(tmp_path / "out.jsonl")
    assert len(rows) == 3 and all(not r["description"].startswith("{") for r in rows)


def test_few_shot_examples_come_from_the_source_dataset(server, tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    caps = [f"A person number {i} in a coat and dark trousers, style sample." for i in range(5)]
    (ds / "annotations.jsonl").write_text("".join(json.dumps({"id": str(i), "captions": [c]}) + "\n"
                                                  for i, c in enumerate(caps)))
    rows = [{**r, "source_dataset": str(ds)} for r in make_rows(3)]
    write_rows(tmp_path / "in.jsonl", rows)
    assert invoke(_args(server, tmp_path, "--few-shot", "2")).exit_code == 0
    assert len(server.state.prompts) == 3
    for prompt in server.state.prompts:
        assert "Examples of the dataset's style" in prompt and sum(c in prompt for c in caps) == 2


def test_few_shot_without_any_caption_source_is_refused_and_a_partial_one_is_noted(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(3))  # no source_dataset, no --style-dataset
    res = invoke(_args(server, tmp_path, "--few-shot", "2"))
    assert res.exit_code == 1 and "source_dataset" in res.output and "--style-dataset" in res.output
    assert server.state.requests == 0 and not (tmp_path / "out.jsonl").exists()
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "annotations.jsonl").write_text(json.dumps({"id": "0", "captions": ["A person in a coat."]}) + "\n")
    rows = make_rows(3)
    rows[0]["source_dataset"] = str(ds)
    write_rows(tmp_path / "in.jsonl", rows)
    res = invoke(_args(server, tmp_path, "--few-shot", "2"))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["notes"] == [
        "2 of 3 records name no source dataset: they are asked without few-shot examples "
        "(set --style-dataset to give them some)"]
    assert "2 of 3 records name no source dataset" in " ".join(res.stderr.split())
    # the flag the hint names exists: every record takes its examples from it
    write_rows(tmp_path / "in.jsonl", make_rows(3))
    (tmp_path / "out.jsonl").unlink()
    before = len(server.state.prompts)
    res = invoke([*_args(server, tmp_path, "--few-shot", "1"), "--style-dataset", ds])
    assert res.exit_code == 0, res.output
    assert len(server.state.prompts) - before == 3
    assert all("A person in a coat." in p for p in server.state.prompts[before:])


def test_verbose_errors_do_not_leak_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    write_rows(tmp_path / "in.jsonl", make_rows(3))
    with FakeOpenAI(api_key="sk-other-key-123456") as srv:
        res = invoke(["-v"] + _args(srv, tmp_path))
    assert res.exit_code == 1 and SECRET not in res.output and "[redacted]" in res.output


def test_annotate_file_api_offline(tmp_path):
    from dp_cli.annotate.runner import annotate_file

    write_rows(tmp_path / "in.jsonl", make_rows(4))
    result = annotate_file(tmp_path / "in.jsonl", tmp_path / "out.jsonl", backend="offline")
    assert result.stats.done == 4 and len(read_lines(tmp_path / "out.jsonl")) == 4


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_stops_at_once_records_nothing_and_the_rerun_finishes(tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(20))
    port = _free_port()
    args = ["annotate", "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--base-url",
            f"http://127.0.0.1:{port}/v1", "--max-retries", "0", "--concurrency", "4"]
    res = invoke(args)
    assert res.exit_code == 1 and "cannot connect to the server" in res.output and "Traceback" not in res.output
    assert f"127.0.0.1:{port}" in res.output and "rerun the same command" in " ".join(res.output.split())
    # nothing is recorded as failed: the records were never asked
    assert read_lines(tmp_path / "out.jsonl") == [] and read_lines(tmp_path / "out.failed.jsonl") == []
    with FakeOpenAI(port=port):  # the server is up now: the same command does every record once
        res = invoke(args)
    assert res.exit_code == 0, res.output
    assert sorted(r["id"] for r in read_lines(tmp_path / "out.jsonl")) == sorted(r["id"] for r in make_rows(20))


def test_a_record_that_never_reaches_the_server_is_left_for_the_next_run(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(6, {2: "FAULTHANGUPx3"}))
    res = invoke(_args(server, tmp_path, "--max-retries", "0", "--attempts", "2"))
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (summary["done"], summary["failed"], summary["unreachable"]) == (5, 0, 1)
    assert read_lines(tmp_path / "out.failed.jsonl") == [] and "rerun the same command" in " ".join(res.stderr.split())
    res = invoke(_args(server, tmp_path, "--max-retries", "0", "--attempts", "2"))  # hangs up once more, then answers
    assert res.exit_code == 0 and json.loads(res.stdout.strip().splitlines()[-1])["done"] == 1
    assert len(read_lines(tmp_path / "out.jsonl")) == 6


def test_a_server_that_only_hangs_up_stops_the_run(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(4, {i: "FAULTHANGUPx99" for i in range(4)}))
    res = invoke(_args(server, tmp_path, "--max-retries", "0"))
    assert res.exit_code == 1 and re.search(r"closed [3-9] connections without answering", res.output)  # concurrent
    assert read_lines(tmp_path / "out.jsonl") == [] and read_lines(tmp_path / "out.failed.jsonl") == []


def test_server_going_away_stops_the_run_keeping_finished_records(tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(60))
    with FakeOpenAI(down_after=12) as srv:
        res = invoke(_args(srv, tmp_path, "--concurrency", "2", "--max-retries", "0", "--attempts", "1"))
    assert res.exit_code == 1 and "stopped answering" in res.output and "Traceback" not in res.output
    done, failed = read_lines(tmp_path / "out.jsonl"), read_lines(tmp_path / "out.failed.jsonl")
    assert 1 <= len(done) <= 12
    assert failed == []  # records that got no connection are left for the next run, not logged as failed
    with FakeOpenAI() as srv:  # the same command continues
        res = invoke(_args(srv, tmp_path))
    assert res.exit_code == 0, res.output
    ids = [r["id"] for r in read_lines(tmp_path / "out.jsonl")]
    assert len(ids) == len(set(ids)) == 60 and read_lines(tmp_path / "out.failed.jsonl") == []


def test_a_server_refusing_every_request_stops_the_run_instead_of_failing_every_record(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(40, {i: "FAULT400x9" for i in range(40)}))
    res = invoke(_args(server, tmp_path, "--concurrency", "2"))
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "400 bad request for the first" in res.output and "Unsupported parameter" in res.output
    assert server.state.requests < 40  # stopped early, not 40 records x 3 attempts
    failed = read_lines(tmp_path / "out.failed.jsonl")  # logged: a rerun goes on past them, never loops on them
    assert 4 <= len(failed) < 10 and {r["reason"] for r in failed} == {"bad_request"}
    again = invoke(_args(server, tmp_path, "--concurrency", "2"))
    assert again.exit_code == 1 and len(read_lines(tmp_path / "out.failed.jsonl")) >= len(failed) + 4


def test_a_400_after_answers_is_that_records_failure(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(6, {5: "FAULT400x9"}))
    res = invoke(_args(server, tmp_path, "--concurrency", "1"))
    assert res.exit_code == 0, res.output
    assert [r["reason"] for r in read_lines(tmp_path / "out.failed.jsonl")] == ["bad_request"]


def test_a_rerun_with_other_answer_settings_says_it_adds_lines(server, tmp_path):
    write_rows(tmp_path / "in.jsonl", make_rows(3))
    assert json.loads(invoke(_args(server, tmp_path)).stdout.splitlines()[-1])["notes"] == []
    res = invoke(_args(server, tmp_path, "--temperature", "0.5"))
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout.splitlines()[-1])["notes"]
    assert len(notes) == 1 and notes[0].startswith("3 record(s) already have a line in") and "other settings" in notes[0]
    assert len(read_lines(tmp_path / "out.jsonl")) == 6  # the new line of each id after the old one

"""Fixtures for dp annotate tests: the fake OpenAI server, input files, running the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import FakeOpenAI  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture
def server():
    with FakeOpenAI(latency=0.005, slow_seconds=1.0) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "DP_ANNOTATE_BACKEND", "DP_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def make_rows(n: int, faults: dict[int, str] | None = None, with_id: bool = True) -> list[dict]:
    """n edit-manifest-like records; `faults` appends a FAULT marker to chosen records."""
    rows = []
    for i in range(n):
        desc = f"A man number {i} is wearing a black shirt, grey pants and a pair of brown shoes."
        if faults and i in faults:
            desc += f" {faults[i]}"
        row = {"base_description": desc, "reference_attribute_list": [
            {"type": "uppercloth", "label": "red jacket", "image": "/x.png"}, {"type": "bottomcloth", "label": "blue jeans"}]}
        if with_id:
            row = {"id": f"p{i}__v0", **row}
        rows.append(row)
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict]:
    """Every line must be whole JSON (no partial line)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    assert text == "" or text.endswith("\n"), "partial last line"
    return [json.loads(line) for line in text.splitlines()]


def invoke(args: list[str], input: str | None = None):
    from typer.testing import CliRunner

    from dp_cli.app import app

    return CliRunner().invoke(app, args, input=input)

"""Run `dp` in-process through Typer's runner, from a clean folder without dp.toml."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner


@pytest.fixture
def dp(tmp_path, monkeypatch):
    """`dp(*args, env=...)` -> click Result (stdout and stderr kept apart)."""
    from dp_cli import console
    from dp_cli.app import app

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for var in ("DP_CONFIG", "DP_DATASET"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        result = runner.invoke(app, [str(a) for a in args], env=env)
        console.STATE = console.AppState()
        logging.getLogger("dp").setLevel(logging.NOTSET)  # --verbose sets it (dp_cli/app.py)
        return result

    return invoke


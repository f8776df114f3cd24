"""Shell completion (Typer's): `dp --show-completion` prints the script for the shell it runs in,
`--install-completion` is offered, and the script's completion requests are answered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _dp() -> Path:
    script = Path(sys.executable).with_name("dp")
    assert script.exists(), f"{script}: dp is not installed in this environment (make install)"
    return script


def _bash(command: str, env) -> subprocess.CompletedProcess:
    # '; true': bash stays the parent of dp (Typer finds the shell among dp's parent processes)
    return subprocess.run(["bash", "-c", f"{command}; true"], env=env, capture_output=True, text=True, timeout=60)


def test_show_completion_prints_the_bash_script(subprocess_env):
    for command in (f'"{_dp()}" --show-completion bash', f'"{_dp()}" --show-completion'):
        run = _bash(command, subprocess_env(SHELL="/bin/bash"))
        assert run.stderr == "", run.stderr
        assert "complete -o default -F _dp_completion dp" in run.stdout and "_DP_COMPLETE=complete_bash" in run.stdout


def test_the_script_is_valid_bash_and_registers_the_completion(subprocess_env):
    run = _bash(f'eval "$("{_dp()}" --show-completion)" && complete -p dp', subprocess_env(SHELL="/bin/bash"))
    assert "_dp_completion" in run.stdout and run.stderr == "", (run.stdout, run.stderr)


def test_the_installed_dp_answers_completion_requests(subprocess_env):
    def complete(words: str, cword: int) -> list[str]:
        env = subprocess_env(_DP_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
        run = subprocess.run([str(_dp())], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout.split()

    assert complete("dp tr", 1) == ["train"]
    assert "--format" in complete("dp export --for", 2)
    assert {"edits", "retrieval", "captions"} <= set(complete("dp eval ", 2))


def test_help_offers_completion(subprocess_env):
    run = subprocess.run([str(_dp()), "--help"], env=subprocess_env(COLUMNS="80"), capture_output=True, text=True,
                         timeout=60)
    assert "--install-completion" in run.stdout and "--show-completion" in run.stdout

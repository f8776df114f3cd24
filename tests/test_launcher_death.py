"""A dp process started by torchrun / accelerate launch ends (SIGTERM, handled like Ctrl-C) when its launcher
is killed outright, instead of running on beside a rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

WORKER = """
import os, sys, time
from dp_cli.distributed import die_with_launcher
print(die_with_launcher(), flush=True)
time.sleep(60)
"""

LAUNCHER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("launched, ends", [(True, True), (False, False)])
def test_a_worker_ends_when_its_launcher_is_killed(launched, ends):
    env = {k: v for k, v in os.environ.items() if k != "TORCHELASTIC_RUN_ID"}
    if launched:
        env["TORCHELASTIC_RUN_ID"] = "test"  # what torchrun sets in its workers
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, WORKER], stdout=subprocess.PIPE, text=True, env=env)
    pid, armed = launcher.stdout.readline().split()
    pid = int(pid)
    try:
        assert armed == str(launched)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
        deadline = time.time() + (10 if ends else 1)  # ending takes well under a second
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert _alive(pid) is not ends
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

"""One run's subprocess: exit code and output captured, peak memory measured, nothing left behind."""

from __future__ import annotations

import os
import sys
import time

import pytest

from vla_rl.sweep.launch import LaunchRequest, run_subprocess, train_argv

ALLOCATE = """
import sys, time
block = bytearray(300 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1   # touch every page so it is resident
print("allocated", flush=True)
time.sleep(3)
sys.exit(3)
"""


def test_exit_code_log_and_peak_memory(tmp_path):
    log = tmp_path / "train.log"
    attempt = run_subprocess(LaunchRequest(str(tmp_path), [sys.executable, "-c", ALLOCATE], str(log)))
    assert attempt.returncode == 3
    assert "allocated" in log.read_text()
    assert attempt.max_rss_bytes >= 300 * 2**20
    pytest.importorskip("psutil")
    assert attempt.peak_memory_bytes is not None and attempt.peak_memory_bytes >= 300 * 2**20
    assert attempt.seconds >= 3


ORPHAN = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(child.pid))
"""


def test_processes_a_run_leaves_behind_are_ended(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    attempt = run_subprocess(LaunchRequest(str(tmp_path), [sys.executable, "-c", ORPHAN, str(pid_file)],
                                           str(tmp_path / "log")))
    assert attempt.returncode == 0
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.1)
    assert not _alive(grandchild), "a worker the run left behind is still running"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_train_command_resumes_with_a_readable_override(tmp_path):
    argv = train_argv(tmp_path / "run.yaml", tmp_path / "a b" / "checkpoints")
    assert argv[:5] == [sys.executable, "-m", "vla_rl.cli.main", "train", str(tmp_path / "run.yaml")]
    from vla_rl.config.loader import parse_override

    assert parse_override(argv[5]) == (["runner", "resume"], str(tmp_path / "a b" / "checkpoints"))
    assert argv[-1] == "--no-progress"
    assert os.path.isabs(argv[0])

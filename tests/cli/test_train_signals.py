"""`vla-rl train` stops on SIGINT (Ctrl-C, or the interrupt a sweep passes on) even when it was started with SIGINT
ignored, as a background job of a non-interactive shell is: before, such a run went on to its end."""

from __future__ import annotations

import signal
import subprocess
import sys

CHILD = """
import os, signal
from vla_rl.cli.train import _interruptible
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # inherited from the parent
_interruptible()
try:
    os.kill(os.getpid(), signal.SIGINT)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_a_run_started_with_sigint_ignored_still_stops_on_sigint():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interrupted", proc.stdout + proc.stderr

"""Progress bars in a pipe: plain lines at a bounded rate, no carriage returns; tqdm on a terminal.

The subprocess test drives bars the way the commands do (a postfix set at every step, as the SFT
bar does) with stderr to a pipe; the real `vla-rl train` in a pipe is checked in
tests/sft/test_warmstart.py (slow).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tqdm import tqdm

from vla_rl.progress import INTERVAL_ENV, PlainBar, interval, progress_bar

REPO = Path(__file__).resolve().parents[1]

DRIVER = textwrap.dedent("""
    import time
    from vla_rl.progress import progress_bar

    start = time.monotonic()
    bar = progress_bar(range(300), desc="sft", unit="step")
    for step in bar:                                                  # ~3 s, a postfix at every step
        time.sleep(0.01)
        bar.set_postfix(nll=f"{1 / (step + 1):.3f}")
    print(f"sft seconds {time.monotonic() - start:.3f}")
    for _ in progress_bar(range(5), desc="rollout"):                  # shorter than one interval
        pass
    bar = progress_bar(total=4, desc="train", unit="it", leave=True)  # stays: one closing line
    for i in range(4):
        bar.update(1)
        bar.set_postfix(loss=f"{i:.3f}")
    bar.close()
    print("summary: done")
""")


def test_bars_in_a_pipe_write_few_plain_lines():
    env = {**os.environ, INTERVAL_ENV: "0.5", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, env=env, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "\r" not in err and "\x1b" not in err, "a redrawn bar reached the pipe"
    lines = err.splitlines()
    sft = [line for line in lines if line.startswith("sft: ")]
    out = proc.stdout.decode().splitlines()
    seconds = float(out[0].split()[-1])
    # one line per 0.5 s, plus the closing line: 300 postfix updates must not mean 300 lines
    assert 2 <= len(sft) <= seconds / 0.5 + 1, lines
    assert sft[-1].startswith("sft: 300/300 step (100%)") and sft[-1].endswith("nll=0.003"), sft[-1]
    assert not any(line.startswith("rollout") for line in lines), "a bar shorter than an interval printed"
    assert [line for line in lines if line.startswith("train")] == [lines[-1]]
    assert lines[-1].startswith("train: 4/4 it (100%)") and lines[-1].endswith("loss=3.000")
    assert len(err) < 2000
    assert out[1:] == ["summary: done"]


def test_a_terminal_gets_tqdm_and_a_file_gets_plain_lines():
    main, other = os.openpty()
    with os.fdopen(other, "w") as tty:
        assert isinstance(progress_bar(total=3, file=tty), tqdm)
    os.close(main)
    assert isinstance(progress_bar(total=3, file=io.StringIO()), PlainBar)
    silent = progress_bar(range(3), enabled=False, file=io.StringIO())
    assert isinstance(silent, tqdm) and silent.disable and list(silent) == [0, 1, 2]


def test_plain_bar_lines_and_close():
    out = io.StringIO()
    bar = PlainBar(total=10, desc="eval", unit="ep", file=out, every=0.0)  # a line at every update
    bar.update(4)
    bar.set_postfix(success=0.25)
    bar.update(6)
    bar.close()
    bar.close()  # a second close writes nothing
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("eval: 4/10 ep (40%)") and "left" in lines[0]
    assert lines[2].startswith("eval: 10/10 ep (100%)") and lines[2].endswith("success=0.25") and "left" not in lines[2]
    quiet = io.StringIO()
    PlainBar(total=5, file=quiet, every=60.0).close()  # never printed, not meant to stay: nothing
    assert quiet.getvalue() == ""
    unknown = io.StringIO()
    PlainBar(desc="demos", unit="demo", file=unknown, every=60.0, leave=True).close()
    assert unknown.getvalue().startswith("demos: 0 demo, 00:00 elapsed")


def test_interval_comes_from_the_environment_and_is_checked(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert interval() == 10.0
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    assert interval() == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        with pytest.raises(ValueError, match=f"{INTERVAL_ENV}=.* must be a number of seconds > 0"):
            interval()

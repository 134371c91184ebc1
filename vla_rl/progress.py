"""Progress bars that suit a terminal and a pipe alike: the one constructor every bar here uses.

On a terminal (the bar's stream is a TTY) a bar is tqdm's, redrawn in place. Anywhere else
(`vla-rl train > log 2>&1`, a CI log, a sweep run's train.log) redrawing writes a carriage-return
update per refresh, and a postfix set at every step refreshes at every step: the SFT bar alone
wrote megabytes per run. There a bar becomes one plain line at most every `interval()` seconds
(`VLA_RL_PROGRESS_INTERVAL`, default 10), and one last line when it closes if it printed before or
is meant to stay (`leave=True`). A short-lived bar (a 2 s rollout window) prints nothing in a pipe;
the command's own summary is printed as always.

    for batch in progress_bar(batches, desc="sft", unit="step"): ...
    bar = progress_bar(total=64, desc="eval", unit="ep", enabled=show); bar.update(8); bar.close()
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator, TextIO

from tqdm import tqdm

INTERVAL_ENV = "VLA_RL_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0
"""Seconds between two lines of one bar when its stream is not a terminal."""


def interval() -> float:
    """Seconds between a bar's plain lines: $VLA_RL_PROGRESS_INTERVAL, else 10."""
    raw = os.environ.get(INTERVAL_ENV)
    if raw is None or raw == "":
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{INTERVAL_ENV}={raw!r} must be a number of seconds > 0 (e.g. {INTERVAL_ENV}=5), "
                         "or unset for the default of 10")
    return value


def interactive(stream: Any) -> bool:
    """Whether `stream` is a terminal (a bar may redraw itself in place there)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _rate(n: float, elapsed: float, unit: str) -> str:
    if elapsed <= 0 or n <= 0:
        return ""
    per_s = n / elapsed
    if per_s >= 100:
        return f"{per_s:.0f} {unit}/s"
    return f"{per_s:.1f} {unit}/s" if per_s >= 1 else f"{1 / per_s:.1f} s/{unit}"


class PlainBar:
    """A bar as plain lines (tqdm's surface used here: iterate, update, set_postfix, set_description, close).

    A line is `desc: n/total (pct) elapsed, rate, ~left, postfix`; at most one per `every` seconds
    (the first after `every` seconds), then one on close if any was printed or `leave` is set.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
                 unit: str = "it", initial: float = 0, leave: bool = False, file: TextIO | None = None,
                 every: float | None = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.leave = total, desc, unit, leave
        self.n = initial
        self._initial = initial
        self.file = file
        self.every = interval() if every is None else every
        self.postfix = ""
        self.lines = 0
        self.closed = False
        self._start = self._last = time.monotonic()

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this bar was made with total=, not an iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "PlainBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._write()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """Shown on the next line (never prints by itself, whatever `refresh` says)."""
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """Lines follow the clock only; kept for tqdm's surface."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.lines or self.leave:
            self._write()

    def line(self) -> str:
        """The bar's current state as one line of text."""
        elapsed = time.monotonic() - self._start
        done = self.n - self._initial
        count = f"{self.n:g}/{self.total:g} {self.unit}" if self.total else f"{self.n:g} {self.unit}"
        if self.total:
            count += f" ({100 * self.n / self.total:.0f}%)"
        parts = [count, f"{tqdm.format_interval(elapsed)} elapsed"]
        rate = _rate(done, elapsed, self.unit)
        if rate:
            parts.append(rate)
        if self.total and done > 0 and not self.closed and self.n < self.total:
            parts.append(f"~{tqdm.format_interval((self.total - self.n) * elapsed / done)} left")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: " + ", ".join(parts) if self.desc else ", ".join(parts)

    def _write(self) -> None:
        stream = self.file or sys.stderr
        stream.write(self.line() + "\n")
        stream.flush()
        self.lines += 1


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
                 initial: float = 0, leave: bool = False, enabled: bool = True,
                 file: TextIO | None = None) -> tqdm | PlainBar:
    """A tqdm bar on a terminal, a `PlainBar` elsewhere, a silent tqdm when not `enabled`.

    `file` is the stream (default: sys.stderr, looked up now so that a redirected stderr counts).
    """
    stream = file or sys.stderr
    if not enabled or interactive(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave, file=stream,
                    disable=not enabled)
    return PlainBar(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave, file=stream)


__all__ = ["DEFAULT_INTERVAL_S", "INTERVAL_ENV", "PlainBar", "interactive", "interval", "progress_bar"]

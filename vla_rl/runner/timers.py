"""Named wall-clock timers for the phases of an iteration (reported as `time/<phase>`)."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator


class PhaseTimers:
    """Accumulates seconds per named phase; `pop()` returns and clears the current iteration's."""

    def __init__(self) -> None:
        self._current: dict[str, float] = defaultdict(float)
        self.totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self._current[name] += elapsed
            self.totals[name] += elapsed

    def pop(self) -> dict[str, float]:
        out = dict(self._current)
        self._current.clear()
        return out

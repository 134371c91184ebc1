"""Metrics sink of a run: TensorBoard event files plus a `metrics.jsonl` line per iteration.

Metric names are namespaced by part: `env/`, `rollout/`, `train/`, `eval/`, `time/`. A leaf module:
the runner and SFT write logs with it, and evaluation reports and sweeps read them (`read_metrics`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path


class MetricsLog:
    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir.mkdir(parents=True, exist_ok=True)
        self.dir = log_dir
        self._tb = SummaryWriter(str(log_dir))
        self._jsonl = open(log_dir / "metrics.jsonl", "a", encoding="utf-8")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        for key, value in clean.items():
            self._tb.add_scalar(key, value, step)
        self._jsonl.write(json.dumps({"iteration": step, **clean}) + "\n")
        self._jsonl.flush()
        self._tb.flush()

    def close(self) -> None:
        self._tb.close()
        self._jsonl.close()


class NullLog:
    """The metrics log of a process that writes no files (data-parallel ranks other than 0)."""

    def write(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


def read_metrics(log_dir: Path) -> list[dict[str, float]]:
    """All rows of a run's metrics.jsonl (for reports and learning curves)."""
    path = Path(log_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


__all__ = ["MetricsLog", "NullLog", "read_metrics"]

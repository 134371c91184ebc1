"""What one finished run of a sweep produced, read back from its folder.

Sources, all written by the run itself: `eval/final.json` (the final evaluation, per episode),
`logs/metrics.jsonl` (one train row per iteration with `rollout/total_env_steps` and `time/<phase>`,
plus an eval row after each evaluation), `config.yaml` (the config that ran) and the sweep's own
`sweep_run.json` (attempts, peak memory).

A resumed run appends to metrics.jsonl, so iterations between its last checkpoint and the
interruption appear twice; `effective_rows` keeps the rows of the attempt that counted.

"Training seconds" everywhere here are the summed phase timers of the iterations, setup and
evaluation excluded, so that the evaluation cadence does not change a cell's cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

import yaml

from vla_rl.metrics_log import read_metrics

TOTAL_STEPS = "rollout/total_env_steps"
"""Train-row key: env steps collected so far (marks a train row)."""
EVAL_SUCCESS = "eval/success_rate"
"""Eval-row key: success rate of that evaluation (marks an eval row)."""
EVAL_RETURN = "eval/episode_return"
"""Eval-row key: mean episode return of that evaluation."""
NOT_TRAINING = ("time/setup", "time/eval")
"""Phase timers left out of training seconds."""
FINAL_EVAL = Path("eval") / "final.json"
"""The final evaluation record, relative to a run folder."""
RUN_RECORD = "sweep_run.json"
"""The sweep's record of a run's attempts (exit codes, seconds, peak memory)."""


@dataclass
class CurvePoint:
    """One evaluation during training."""

    iteration: int
    env_steps: float
    """Env steps collected before this evaluation."""
    train_seconds: float
    """Training seconds spent before this evaluation (setup and evaluation excluded)."""
    success_rate: float
    episode_return: float | None = None
    """Mean return of that evaluation's episodes (None when the row has none)."""


@dataclass
class RunResult:
    """The numbers of one run that the comparison table aggregates."""

    name: str
    labels: dict[str, str]
    """Axis name -> cell label."""
    seed: int
    final_success: float
    """success_rate of eval/final.json."""
    successes: int
    """Successful episodes of the final evaluation."""
    episodes: int
    """Episodes of the final evaluation."""
    final_return: float
    """Mean episode return of the final evaluation."""
    env_steps: int
    """Training env steps (eval/final.json)."""
    train_seconds: float
    rollout_seconds: float
    action_chunk: int
    """Env steps per policy action (model.action_chunk)."""
    curve: list[CurvePoint] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    """Largest summed memory of the run's processes over its attempts (None: not measured)."""

    @property
    def rollout_env_steps_per_s(self) -> float | None:
        """Env steps per second of rollout (simulation plus policy inference)."""
        return self.env_steps / self.rollout_seconds if self.rollout_seconds > 0 else None

    @property
    def rollout_actions_per_s(self) -> float | None:
        """Policy actions (one chunk of `action_chunk` env steps each) per second of rollout."""
        rate = self.rollout_env_steps_per_s
        return rate / self.action_chunk if rate is not None else None

    @property
    def train_env_steps_per_s(self) -> float | None:
        """Env steps per training second (rollout, advantages, update, checkpoints)."""
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else None

    def first_crossing(self, threshold: float) -> CurvePoint | None:
        """The first evaluation reaching `threshold`, or None."""
        return first_crossing(self.curve, threshold)


def effective_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that count after resumes: a train row of iteration k drops every earlier row of
    iteration >= k (those came from an attempt interrupted after its last checkpoint)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if TOTAL_STEPS in row:
            out = [r for r in out if r["iteration"] < row["iteration"]]
        out.append(row)
    return out


def training_seconds(row: dict[str, Any]) -> float:
    """Seconds of one train row's phases, setup and evaluation excluded."""
    return sum(v for k, v in row.items() if k.startswith("time/") and k not in NOT_TRAINING)


def eval_curve(rows: list[dict[str, Any]]) -> list[CurvePoint]:
    """Success rate of every evaluation, placed at the env steps and training seconds spent before it."""
    steps_at, seconds_at = {0: 0.0}, {0: 0.0}
    spent = 0.0
    for row in rows:
        if TOTAL_STEPS in row:
            spent += training_seconds(row)
            steps_at[row["iteration"]] = float(row[TOTAL_STEPS])
            seconds_at[row["iteration"]] = spent
    return [CurvePoint(int(r["iteration"]), steps_at[r["iteration"]], seconds_at[r["iteration"]], float(r[EVAL_SUCCESS]),
                       r.get(EVAL_RETURN))
            for r in rows if EVAL_SUCCESS in r and r["iteration"] in steps_at]


def first_crossing(curve: list[CurvePoint], threshold: float) -> CurvePoint | None:
    """The first point with success_rate >= threshold, or None when the curve never gets there."""
    return next((p for p in curve if p.success_rate >= threshold), None)


def read_run_record(run_dir: Path) -> dict[str, Any] | None:
    """The sweep's `sweep_run.json` of a run folder, or None."""
    path = Path(run_dir) / RUN_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def load_run_result(run_dir: Path, name: str, labels: dict[str, str], seed: int) -> RunResult:
    """Read a finished run's folder; FileNotFoundError names what is missing."""
    run_dir = Path(run_dir)
    final_path = run_dir / FINAL_EVAL
    if not final_path.is_file():
        raise FileNotFoundError(f"{final_path} is missing: run {name} has not finished (rerun the sweep to finish it)")
    final = json.loads(final_path.read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    rows = effective_rows(read_metrics(run_dir / "logs"))
    train_rows = [r for r in rows if TOTAL_STEPS in r]
    record = read_run_record(run_dir) or {}
    peaks = [a["peak_memory_bytes"] for a in record.get("attempts", []) if a.get("peak_memory_bytes")]
    episodes = final["episodes"]
    return RunResult(
        name=name, labels=dict(labels), seed=seed,
        final_success=float(final["success_rate"]),
        successes=sum(bool(e["success"]) for e in episodes), episodes=len(episodes),
        final_return=fmean(float(e["return"]) for e in episodes) if episodes else 0.0,
        env_steps=int(final["env_steps"]),
        train_seconds=sum(training_seconds(r) for r in train_rows),
        rollout_seconds=sum(r.get("time/rollout", 0.0) for r in train_rows),
        action_chunk=int(config["model"].get("action_chunk", 1)),  # (openvla has no such key: one action per pass)
        curve=eval_curve(rows),
        peak_memory_bytes=max(peaks) if peaks else None,
    )


__all__ = ["CurvePoint", "RunResult", "effective_rows", "training_seconds", "eval_curve", "first_crossing",
           "load_run_result", "read_run_record", "FINAL_EVAL", "RUN_RECORD", "TOTAL_STEPS", "EVAL_SUCCESS"]

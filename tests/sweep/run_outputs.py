"""Run folders written with the runner's own writers (config dump, MetricsLog, write_eval_record,
checkpoint `latest`) from random numbers, for table and status tests that need many runs in
milliseconds. The slow end-to-end tests check the same things on real training runs."""

from __future__ import annotations

import numpy as np

from vla_rl.checkpoints import LATEST
from vla_rl.config.loader import dump_config
from vla_rl.eval.episode_stats import EpisodeStats
from vla_rl.eval.episodes import write_eval_record
from vla_rl.metrics_log import MetricsLog
from vla_rl.sweep.launch import Attempt
from vla_rl.sweep.plan import RunPlan
from vla_rl.sweep.record import append_attempt

PHASES = ("time/setup", "time/eval", "time/rollout", "time/advantages", "time/train", "time/checkpoint")


def _eval(rng: np.random.Generator, episodes: int) -> EpisodeStats:
    successes = [bool(s) for s in rng.random(episodes) < rng.random()]
    return EpisodeStats(reset_ids=list(range(1_000_000, 1_000_000 + episodes)), successes=successes,
                      returns=[float(r) for r in rng.random(episodes)], lengths=[5] * episodes, env_steps=5 * episodes)


def _train_row(rng: np.random.Generator, total_steps: int) -> dict[str, float]:
    return {**{k: float(rng.uniform(0.1, 2.0)) for k in PHASES}, "train/loss": float(rng.normal()),
            "rollout/env_steps_per_s": 10.0, "rollout/total_env_steps": float(total_steps)}


def write_run(plan: RunPlan, rng: np.random.Generator, iterations: int = 4, steps_per_iteration: int = 10,
              interrupted_after: int | None = None, finish: bool = True, peak_memory: int | None = None) -> None:
    """Outputs of a run as the runner writes them: eval rows at every iteration (0 included), train rows,
    and with `interrupted_after=k` a first attempt that logged iterations up to k+1 before dying and a
    second that resumed from the checkpoint of iteration k (so iteration k+1 appears twice)."""
    run_dir = plan.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(plan.config))
    log = MetricsLog(run_dir / "logs")
    log.write(0, _eval(rng, 4).metrics("eval"))
    first_stop = iterations if interrupted_after is None else interrupted_after + 1
    for i in range(1, first_stop + 1):
        log.write(i, _train_row(rng, i * steps_per_iteration))
        if i < iterations:  # the runner skips the periodic evaluation at the last iteration: the final one follows
            log.write(i, _eval(rng, 4).metrics("eval"))
    if interrupted_after is not None:
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        (run_dir / "checkpoints" / LATEST).write_text(f"iter-{interrupted_after:06d}\n")
        for i in range(interrupted_after + 1, iterations + 1 if finish else interrupted_after + 1):
            log.write(i, _train_row(rng, i * steps_per_iteration))
            if i < iterations:
                log.write(i, _eval(rng, 4).metrics("eval"))
    log.close()
    if finish:
        final = _eval(rng, 6)
        log = MetricsLog(run_dir / "logs")
        log.write(iterations, final.metrics("eval"))
        log.close()
        write_eval_record(run_dir / "eval" / "final.json", final, iterations, iterations * steps_per_iteration, plan.config)
    append_attempt(plan, Attempt(started=0.0, seconds=1.0, returncode=0 if finish else 130, resumed_from=None,
                                 peak_memory_bytes=peak_memory, max_rss_bytes=1, host="test"))

"""Evaluation episodes: one fixed-length episode per reset id, in rounds of N environments.

Every reset id is evaluated exactly once (the last round leaves its spare environments unused), so
the same ids give the same table on any machine with the same simulator version.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from vla_rl.eval.episode_stats import EpisodeStats
from vla_rl.progress import progress_bar


FrameSink = Callable[..., None]
"""Receives (batched observation, success=bool) for env 0's first episode: `EpisodeVideo.add`."""


class EpisodeObserver:
    """Hooks into `evaluate_policy`'s loop (the narrow interface benchmark runs use): every method is a
    no-op here; override what you need. `obs` is the batched observation of all N environments."""

    def started(self, env_index: int, reset_id: int, obs: dict) -> None:
        """Environment `env_index` began the episode of `reset_id`; `obs` holds its first observation."""

    def stepped(self, obs: dict, running: np.ndarray) -> None:
        """A chunk was executed; `running` (N,) bool marks the environments whose episode it advanced."""

    def ended(self, env_index: int, reset_id: int, success: bool, episode_return: float, length: int) -> None:
        """The episode of `reset_id` on `env_index` is over (called once per reset id)."""


@torch.no_grad()
def evaluate_policy(env, policy, reset_ids: Sequence[int], mode: str = "greedy", temperature: float = 1.0,
                    frame_sink: FrameSink | None = None, progress: bool = True,
                    observer: EpisodeObserver | None = None) -> EpisodeStats:
    """Run one episode per reset id with `policy`; `env` must have auto-reset off."""
    import time

    start = time.perf_counter()
    result = EpisodeStats()
    n = env.num_envs
    ids = list(reset_ids)
    bar = progress_bar(total=len(ids), desc="eval", unit="ep", enabled=progress)
    for first in range(0, len(ids), n):
        batch = ids[first:first + n]
        padded = batch + [batch[-1]] * (n - len(batch))
        obs = env.reset(reset_ids=padded)
        record = frame_sink is not None and first == 0
        ended = np.zeros(n, dtype=bool)
        ended[len(batch):] = True  # spare environments of the last round do not count
        success = np.zeros(n, dtype=bool)
        if record:
            frame_sink(obs, success=False)
        if observer is not None:
            for i in range(len(batch)):
                observer.started(i, batch[i], obs)
        while not ended.all():
            out = policy.act(obs, mode=mode, temperature=temperature)
            step = env.chunk_step(out.actions)
            result.policy_calls += int((~ended).sum())
            result.env_steps += int((~ended).sum()) * out.actions.shape[1]
            success |= np.asarray(step.info["success"], dtype=bool) & ~ended
            done = np.asarray(step.info.get("episode_done", np.zeros(n, dtype=bool)), dtype=bool)
            if observer is not None:
                observer.stepped(step.obs, ~ended)
            for i in np.flatnonzero(done & ~ended):
                result.add(bool(step.info["success_once"][i]), float(step.info["episode_return"][i]),
                           int(step.info["episode_length"][i]), reset_id=padded[i])
                bar.update(1)
                if observer is not None:
                    observer.ended(int(i), padded[i], result.successes[-1], result.returns[-1], result.lengths[-1])
            ended |= done
            obs = step.obs
            if record:
                frame_sink(obs, success=bool(success[0]))
                record = not ended[0]
    bar.close()
    result.seconds = time.perf_counter() - start
    return result


def format_rate(successes: Sequence[bool]) -> str:
    """`62.5% [40.9, 79.8] (10/16)` with a Wilson 95% interval."""
    from vla_rl.eval.stats import wilson_interval

    k, n = int(sum(successes)), len(successes)
    low, high = wilson_interval(k, n)
    return f"{100 * k / max(n, 1):.1f}% [{100 * low:.1f}, {100 * high:.1f}] ({k}/{n})"


def write_eval_record(path, result: EpisodeStats, iteration: int, env_steps: int, config) -> None:
    """The per-episode results of an evaluation as JSON (what reports, comparisons and sweeps read)."""
    import json
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "task": f"{config.env.backend}/{config.env.task}",
        "iteration": iteration,
        "env_steps": env_steps,
        "decoding": config.rollout.eval_mode,
        "temperature": config.rollout.eval_temperature if config.rollout.eval_mode == "sample" else None,
        "success_rate": result.success_rate,
        "episodes": [
            {"reset_id": i, "success": s, "return": r, "length": n}
            for i, s, r, n in zip(result.reset_ids, result.successes, result.returns, result.lengths)
        ],
        "seconds": result.seconds,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)

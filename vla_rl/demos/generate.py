"""Generate demonstrations: scripted controllers act in a vectorised env; successful episodes are kept.

All N environments run at once, each with its own controller; an environment whose episode ended
is reset at once with the next reset id, so no env waits for the slowest one. Episodes are recorded
exactly as a policy would live them (the observation before each action, the action, the reward),
and only successful ones are written. With `action_noise` > 0 the executed xyz action is the
controller's plus Gaussian noise while the recorded action stays the controller's (DART-style):
the closed-loop controller corrects the drift, so the demos show how to recover from states off the
ideal path. Reset ids are consecutive from `first_reset_id` and are kept
apart from training and evaluation ids by the caller (`warmstart.demo_seed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_rl.demos.format import DemoWriter, Episode
from vla_rl.demos.privileged import read_privileged
from vla_rl.demos.scripted import make_controller
from vla_rl.progress import progress_bar


@dataclass
class GenerationStats:
    """What one generation did."""

    attempts: int = 0
    """Episodes finished (successful or not)."""
    successes: int = 0
    """Episodes written."""
    env_steps: int = 0
    seconds: float = 0.0
    failed_reset_ids: list[int] = field(default_factory=list)
    """Reset ids whose scripted episode failed (not written)."""

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.attempts, 1)


def demo_metadata(env: Any, source: str) -> dict[str, Any]:
    """The index fields that describe the environment the demos come from."""
    spec = env.spec
    return {
        "backend": spec.backend, "task": spec.task, "control_mode": spec.extras.get("control_mode", ""),
        "action_dim": spec.action_dim, "action_low": list(spec.action_low), "action_high": list(spec.action_high),
        "gripper_convention": spec.gripper_convention, "cameras": list(spec.cameras),
        "image_size": list(spec.image_size), "proprio_dim": spec.proprio_dim, "control_hz": spec.control_hz,
        "reward_mode": spec.reward_mode, "source": source,
        "env_extras": {k: v for k, v in spec.extras.items() if isinstance(v, (str, int, float, bool))},
    }


class _Recorder:
    """The running episode of one environment."""

    def __init__(self, reset_id: int) -> None:
        self.reset_id = reset_id
        self.images: dict[str, list[np.ndarray]] = {}
        self.proprio: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.success: list[bool] = []

    def before(self, obs: dict[str, Any], i: int, action: np.ndarray) -> None:
        for cam, img in obs["images"].items():
            self.images.setdefault(cam, []).append(np.array(img[i], copy=True))
        self.proprio.append(np.asarray(obs["proprio"][i], dtype=np.float32).copy())
        self.actions.append(action)

    def after(self, reward: float, success: bool) -> None:
        self.rewards.append(reward)
        self.success.append(success)

    def episode(self, instruction: str) -> Episode:
        return Episode(images={c: np.stack(v) for c, v in self.images.items()}, proprio=np.stack(self.proprio),
                       actions=np.stack(self.actions).astype(np.float32),
                       rewards=np.asarray(self.rewards, dtype=np.float32), success=np.asarray(self.success),
                       instruction=instruction, reset_id=self.reset_id)


def generate_demos(env: Any, num_demos: int, first_reset_id: int, writer: DemoWriter | None = None,
                   max_attempts: int | None = None, progress: bool = True,
                   action_noise: float = 0.0) -> tuple[list[Episode], GenerationStats]:
    """Run scripted episodes in `env` until `num_demos` succeeded (or `max_attempts` episodes ended).

    Successful episodes go to `writer` when given (and are not kept in memory), otherwise they are
    returned. Raises RuntimeError when the attempts run out first: the controller does not solve
    this task configuration (e.g. a too short `env.max_episode_steps`).
    """
    spec = env.spec
    n = env.num_envs
    max_attempts = max_attempts if max_attempts is not None else 3 * num_demos + n
    controllers = [make_controller(spec.backend, spec.task) for _ in range(n)]
    stats, kept = GenerationStats(), []
    start = time.perf_counter()
    saved_auto_reset = env.auto_reset
    env.auto_reset = False
    next_id = first_reset_id
    ids = list(range(next_id, next_id + n))
    next_id += n
    obs = env.reset(reset_ids=ids)
    recorders = [_Recorder(r) for r in ids]
    for c in controllers:
        c.reset()
    active = np.ones(n, dtype=bool)
    rng = np.random.default_rng(first_reset_id)
    bar = progress_bar(total=num_demos, desc=f"demos {spec.task}", unit="demo", enabled=progress)
    try:
        while active.any():
            states = read_privileged(env, obs)
            actions = np.zeros((n, spec.action_dim), dtype=np.float32)
            for i in np.flatnonzero(active):
                actions[i] = controllers[i].act(states[i])
                recorders[i].before(obs, i, actions[i])
            executed = actions.copy()
            if action_noise > 0:
                executed[:, :3] = np.clip(executed[:, :3] + rng.normal(0.0, action_noise, (n, 3)), -1.0, 1.0)
            result = env.step(executed)
            stats.env_steps += int(active.sum())
            done = np.asarray(result.info["episode_done"], dtype=bool) & active
            for i in np.flatnonzero(active):
                recorders[i].after(float(result.reward[i]), bool(result.info["success"][i]))
            obs = result.obs
            reset_envs, reset_ids = [], []
            for i in np.flatnonzero(done):
                stats.attempts += 1
                if bool(result.info["success_once"][i]) and stats.successes < num_demos:
                    episode = recorders[i].episode(obs["instruction"][i])
                    stats.successes += 1
                    bar.update(1)
                    if writer is not None:
                        writer.add(episode)
                    else:
                        kept.append(episode)
                elif not bool(result.info["success_once"][i]):
                    stats.failed_reset_ids.append(recorders[i].reset_id)
                in_flight = int(active.sum()) - 1
                if stats.successes + in_flight >= num_demos or stats.attempts + in_flight >= max_attempts:
                    active[i] = False
                    continue
                reset_envs.append(int(i))
                reset_ids.append(next_id)
                recorders[i] = _Recorder(next_id)
                controllers[i].reset()
                next_id += 1
            if reset_envs:
                obs = env.reset(reset_ids=reset_ids, env_ids=reset_envs)
    finally:
        bar.close()
        env.auto_reset = saved_auto_reset
    stats.seconds = time.perf_counter() - start
    if stats.successes < num_demos:
        raise RuntimeError(
            f"the scripted controller for {spec.backend}/{spec.task} solved only {stats.successes} of {stats.attempts} "
            f"episodes (wanted {num_demos}); failed reset ids {stats.failed_reset_ids[:10]}. Check env.max_episode_steps "
            "(the controller needs its time) or lower warmstart.demos"
        )
    return kept, stats


__all__ = ["GenerationStats", "demo_metadata", "generate_demos"]

"""Tiny sweep files for the sweep tests: real ManiSkill, a tiny CNN policy, a handful of steps."""

from __future__ import annotations

from pathlib import Path

import yaml

TINY_BASE = {
    "env": {"task": "PushCube-v1", "image_size": 64, "num_envs": 2, "max_episode_steps": 6},
    "model.family": "cnn",
    "algorithm": {"update_epochs": 1, "num_minibatches": 1},
    "runner": {"eval_every": 4, "eval_episodes": 2, "save_every": 3, "video": False},
}
"""Overrides that make a run take seconds after setup: 2 envs, 6-step episodes, 2 eval episodes."""

ALGORITHMS = {
    "name": "algorithm",
    "bundles": {
        "ppo": {"algorithm.name": "ppo", "algorithm.advantage": "gae", "env.auto_reset": True,
                "rollout.steps_per_iteration": 5},  # 10 env steps per iteration
        "grpo": {"algorithm": {"name": "grpo", "advantage": "grpo", "group_size": 2}, "env.auto_reset": False,
                 "model.value_head": False, "rollout.steps_per_iteration": 6},  # 12 (one whole episode per env)
    },
}
"""The PPO-vs-GRPO axis (GRPO needs several keys changed together)."""


def write_sweep(path: Path, **fields) -> Path:
    """A sweep file with the tiny base and the PPO/GRPO axis; `fields` replace top-level keys."""
    data = {"name": "tiny", "recipe": "quickstart_ppo", "overrides": TINY_BASE, "grid": [ALGORITHMS], "seeds": [0],
            "budget": {"env_steps": 20}, "success_threshold": 0.5, "output_dir": str(path.parent / "out")}
    data.update(fields)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path

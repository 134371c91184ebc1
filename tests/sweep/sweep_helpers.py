"""Tiny sweep files for the sweep tests: real ManiSkill, a tiny CNN policy, a handful of steps.

The sweep's base recipe is written here too, whole (no `extends:`): a test states the recipe state it
needs instead of inheriting configs/quickstart*.yaml, whose learning settings change with the recipes
(when the quickstart gained a scripted-demo warm start, 6-step episodes made the demos fail and the
sweep tests with them).
"""

from __future__ import annotations

from pathlib import Path

import yaml

TINY_RECIPE = {
    "env": {"backend": "maniskill", "task": "PushCube-v1", "image_size": 64, "cameras": ["main"], "num_envs": 2,
            "max_episode_steps": 6, "reward_mode": "sparse", "auto_reset": True,
            "mesh_detail": 0.05},  # light robot meshes: the RGB steps are cheaper on a CPU
    "model": {"family": "cnn", "size": "tiny", "value_head": True},
    "warmstart": {"enabled": False},  # scripted demos need ~20 steps; these episodes have 6
    "algorithm": {"name": "ppo", "advantage": "gae", "update_epochs": 1, "num_minibatches": 1},
    "rollout": {"steps_per_iteration": 5},
    "runner": {"eval_initial": False, "eval_every": 4, "eval_episodes": 2, "save_every": 3, "video": False},
    "placement": {"torch_threads": 1},
}
"""The base of every run: 2 envs, 6-step episodes, 2 eval episodes, so a run takes seconds after setup."""

RECIPE_FILE = "tiny_recipe.yaml"
"""Written beside the sweep file, which names it (a sweep's recipe path is relative to the sweep file)."""

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
    """A sweep file over the tiny recipe with the PPO/GRPO axis; `fields` replace top-level keys."""
    (path.parent / RECIPE_FILE).write_text(yaml.safe_dump(TINY_RECIPE, sort_keys=False))
    data = {"name": "tiny", "recipe": RECIPE_FILE, "grid": [ALGORITHMS], "seeds": [0],
            "budget": {"env_steps": 20}, "success_threshold": 0.5, "output_dir": str(path.parent / "out")}
    data.update(fields)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path

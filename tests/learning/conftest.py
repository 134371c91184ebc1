"""Shared fixtures of the learning tests: one PushCube demo folder (4 episodes) made by the `vla-rl demos` command
on the real simulator (64 px, 2 envs), reused by the format, SFT and compare tests."""

from __future__ import annotations

import pytest

DEMO_ARGS = ["env.task=PushCube-v1", "env.num_envs=2", "env.image_size=64", "env.reward_mode=dense",
             "warmstart.demos=4", "warmstart.demo_envs=2",
             "warmstart.demo_seed=700000"]


@pytest.fixture(scope="session")
def push_demos(tmp_path_factory):
    """A folder of 4 scripted PushCube demos, written by `vla-rl demos`."""
    from vla_rl.cli.demos import main

    out = tmp_path_factory.mktemp("demos") / "push"
    assert main(["quickstart_ppo", *DEMO_ARGS, "--out", str(out), "--no-progress"]) == 0
    return out

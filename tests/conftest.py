"""Shared test settings (one torch thread: 2-core machines run simulators beside the tests) and the demo fixture.

Test folders mirror the packages (tests/runner for vla_rl/runner, tests/placement for placement/, ...);
tests/learning holds the recipes' end-to-end learning runs, which cross all of them."""

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# One PushCube demo folder (4 episodes) made by the `vla-rl demos` command on the real simulator (64 px, 2 envs),
# shared by the demo format, SFT and compare tests (built on first use only).
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

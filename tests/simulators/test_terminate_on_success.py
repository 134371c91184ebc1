"""`env.terminate_on_success=false`: a ManiSkill success no longer ends the episode, and still counts."""

from __future__ import annotations

import pytest

from simulators.registry import make_env
from vla_rl.config.core import ConfigError
from vla_rl.config.env import EnvConfig
from vla_rl.demos.generate import generate_demos


@pytest.mark.parametrize("terminate", [True, False])
def test_success_ends_the_episode_only_when_asked(terminate):
    cfg = EnvConfig(task="PushCube-v1", num_envs=1, image_size=32, auto_reset=False, max_episode_steps=40,
                    terminate_on_success=terminate)
    with make_env(cfg) as env:  # the scripted pusher solves PushCube in ~17 steps
        episodes, stats = generate_demos(env, 1, first_reset_id=0, max_attempts=1, progress=False)
    assert stats.successes == 1 and episodes[0].succeeded
    length = len(episodes[0].actions)
    assert (length < 40) if terminate else (length == 40)


def test_libero_refuses_to_run_past_success():
    with pytest.raises(ConfigError, match="terminate_on_success=true"):
        make_env(EnvConfig(backend="libero", task="libero_spatial/0", num_envs=1, terminate_on_success=False))

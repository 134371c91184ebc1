"""EnvConfig validation and the backend registry (no simulator is started)."""

import pytest

from simulators import ENV_BACKENDS, load_builtin_backends, make_env
from vla_rl.config.core import ConfigError, from_dict
from vla_rl.config.env import EnvConfig


def test_defaults_build_pickcube_on_maniskill():
    cfg = EnvConfig()
    assert (cfg.backend, cfg.task, cfg.reward_mode, cfg.auto_reset) == ("maniskill", "PickCube-v1", "sparse", True)
    assert cfg.image_hw == (cfg.image_size, cfg.image_size)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2, "num_workers": 3}, "num_workers"),
        ({"image_size": 8}, "image_size"),
        ({"cameras": ["main", "side"]}, "unknown camera"),
        ({"cameras": ["main", "main"]}, "twice"),
        ({"cameras": []}, "at least one camera"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"reward_mode": "shaped"}, "reward_mode"),
        ({"step_timeout_s": 0.0}, "step_timeout_s"),
        ({"settle_steps": -1}, "settle_steps"),
        ({"seed": -1}, "seed"),
        ({"render": True}, "unknown key"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        from_dict(EnvConfig, overrides, prefix="env")


def test_registry_lists_builtin_backends():
    load_builtin_backends()
    assert {"maniskill", "libero"} <= set(ENV_BACKENDS.names())
    suites = ENV_BACKENDS.get("maniskill").task_suites()
    assert "PickCube-v1" in suites["default"] and "PushCube-v1" in suites["default"]
    assert set(ENV_BACKENDS.get("libero").task_suites()) >= {"libero_spatial", "libero_10", "libero_130"}


def test_unknown_backend_and_task_fail_before_any_worker_starts():
    with pytest.raises(ConfigError, match=r"env.backend='isaac' is not registered; choose one of \['libero', 'maniskill'"):
        make_env(EnvConfig(backend="isaac"))
    with pytest.raises(ConfigError, match="not a supported ManiSkill task"):
        make_env(EnvConfig(task="PickSingleYCB-v1"))
    with pytest.raises(ConfigError, match="no wrist camera"):
        make_env(EnvConfig(task="PushT-v1", cameras=("main", "wrist")))
    with pytest.raises(ConfigError, match="no dense reward"):
        make_env(EnvConfig(task="PlugCharger-v1", reward_mode="dense"))
